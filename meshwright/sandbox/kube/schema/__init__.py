"""What a valid object is (shapes, field types, defaults, names, validation); imports only root modules."""
