"""Event schemas crossing the trigger → operator/sensor boundary, one per service."""
