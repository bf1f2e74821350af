"""Problem files in formats the services do not take directly, converted on the worker before upload."""
