"""The page domain over git: read, write, rename, delete, history, links, search, text
operations and path rules. No web framework; raises app.core.errors.
"""
