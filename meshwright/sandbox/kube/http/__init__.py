"""The API server's HTTP face (routing, bodies, watch, tables, discovery); never imports fleet."""
