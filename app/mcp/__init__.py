"""The MCP service (:8001): its auth layer, the tools, and the client of the page API."""
