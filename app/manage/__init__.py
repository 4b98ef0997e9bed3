"""The platform API (:8002): wikis, members and tokens, check-slug for Caddy, and later
the management UI.
"""
