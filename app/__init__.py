"""robot: a multi-tenant Otterwiki platform."""
