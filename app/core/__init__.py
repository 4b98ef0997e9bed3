"""What every service shares, with no web framework: settings, errors, the platform
store, signing keys, identity (who is calling, with which role), slugs, locks, wikis.
"""
