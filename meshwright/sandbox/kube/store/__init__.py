"""Where objects live and how writes change them; imports root and schema, never controllers or http."""
