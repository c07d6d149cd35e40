"""The operators' console: the built single-page app served at ``/console``."""
