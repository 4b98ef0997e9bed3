"""An in-house ATProto OAuth client: identity resolution, server discovery, PAR, DPoP, tokens."""
