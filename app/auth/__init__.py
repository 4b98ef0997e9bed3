"""The auth service (:8003): its public metadata documents, and later sign-in, sessions
and the OAuth server.
"""
