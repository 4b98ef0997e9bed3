"""What the three Flask services (wiki, manage, auth) share: the app factory, the one JSON error
shape, health answers and JSON bodies. Services import it; pages and core never do, so the
domain stays free of any web framework."""
