"""Wiki slugs: shape, and the names that mean something on a domain (issue: mta-sts, autoconfig)."""

import pytest

from app.core.errors import BadRequest
from app.core.slugs import RESERVED_SLUGS
from app.core.slugs import SLUG_PATTERN
from app.core.slugs import slug_from_host
from app.core.slugs import slug_problem
from app.core.slugs import validate_slug
from tests.core.slug_names import EVERY_HOST_SPELLING
from tests.core.slug_names import EVERY_WHOLE_NAME_SPELLING
from tests.core.slug_names import HOST_SPELLINGS_REFUSED
from tests.core.slug_names import WHOLE_NAME_SPELLINGS_FREE

# One or more of each kind the list covers, named here so shrinking the list fails a test.
KIND_EXAMPLES = [
    "mta-sts",  # RFC 8461 policy host
    "autoconfig",  # Thunderbird mail discovery
    "autodiscover",  # Microsoft mail discovery
    "openpgpkey",  # OpenPGP Web Key Directory
    "postmaster",  # RFC 2142
    "hostmaster",  # RFC 2142, CA/Browser Forum domain validation
    "webmaster",
    "abuse",
    "smtp",
    "imap",
    "wpad",  # proxy auto-discovery
    "isatap",  # RFC 5214
    "www",
    "api",
    "auth",
    "mcp",
    "static",
    "cdn",
    "status",
    "docs",
    "robot",
    "bluesky",
    "well-known",  # RFC 8615
    "caldav",  # RFC 6764
    "jwks",  # RFC 7517
    "statuspage",
    "apex",
    "null",  # JSON and JavaScript literals
    "undefined",
    "password",  # a platform's account mail
    "helpdesk",
    "ews",  # Exchange Web Services
    "activesync",
    "ipv6",  # address families
    "metadata",  # cloud instance metadata
    "metadata-google",  # metadata.google.internal
    "selector",  # Microsoft 365's DKIM selectors are selector1 and selector2
    "google",  # Google Workspace's DKIM selector
]


def test_every_reserved_name_is_refused_with_its_reason():
    for name in sorted(RESERVED_SLUGS):
        # Shaped like a slug, so the refusal is the reservation, not the shape.
        assert SLUG_PATTERN.fullmatch(name) and "--" not in name, name
        problem = slug_problem(name)
        assert problem and "reserved" in problem and "choose another name" in problem, name
        with pytest.raises(BadRequest, match="reserved"):
            validate_slug(name)
        assert slug_from_host(f"{name}.example.org", "example.org") is None, name
        assert slug_from_host(f"{name.upper()}.example.org:443", "example.org") is None, name


@pytest.mark.parametrize("name", KIND_EXAMPLES)
def test_each_kind_is_in_the_list(name):
    assert name in RESERVED_SLUGS


# Everyday names: the seventh review found the region rule refusing the ones from about-us on.
@pytest.mark.parametrize(
    "slug",
    [
        *("alice", "my-notes", "team-wiki", "mail-archive", "robot-fan", "mailbox-tips"),
        *("about-me", "about-us", "node-js", "cloud-ai", "chat-ai", "edge-ai", "feed-me"),
        *("trust-me", "did-it", "team-up", "help-us", "press-on", "turn-on", "store-io"),
        *("status-go", "mod-db"),
        *("true-crime", "nil-by-mouth", "offline", "yesterday", "nonetheless", "apex-climbing"),
        *("calendar-tips", "void-trips", "nanny"),
        # Twenty-fifth review: only the names themselves and their pairs are reserved.
        *("customer-notes", "security-research", "password-tips", "ipv6-notes", "meeting-notes"),
        *("metadata-notes", "alerting-howto", "support-group", "reset-button", "help-center-ui"),
        # Review 34's kinds leave their neighbours free.
        *("relayout", "libfoo-docs", "my-api-docs", "api-notes", "emily", "urlaub", "em-notes"),
        *("url-shortener", "health-tips", "dohnut", "pacman", "docs-team", "resolve-it"),
        *("recipes", "api-design", "status-quo", "help-wanted", "robotics", "wiki-notes"),
        *("wiki-garden", "sender", "clicks", "tracker", "dotfiles", "send-it", "mcp-notes"),
    ],
)
def test_ordinary_names_stay_free(slug):
    assert slug_problem(slug) is None
    assert slug_from_host(f"{slug}.example.org", "example.org") == slug


# Found in review: numbered hosts, cPanel and certificate hosts, and platform look-alikes.
@pytest.mark.parametrize(
    "slug",
    [
        "cpanel",
        "whm",
        "webdisk",
        "cpcalendars",
        "cpcontacts",
        "owa",
        "exchange",
        "outlook",
        "mail1",
        "mail2",
        "smtp1",
        "imap4",
        "mx3",
        "ns5",
        "www7",
        "pki",
        "ocsp",
        "crl",
        "acme",
        "certs",
        "robot-admin",
        "robot-team",
        "robotwtf-support",
        "otter-wiki",
        "bluesky-support",
        "support-bluesky",
        "atproto-security",
        "wiki",
        # Fourth review: the ATProto network's services, list and mail hosts, and others.
        "pds",
        "xrpc",
        "did",
        "listmaster",
        "list-request",
        "majordomo",
        "smtp-relay",
        "mailer",
        "newsletter",
        "dkim",
        "dmarc",
        "spf",
        "amp",
        "mobile",
        "default",
        "gitlab",
        "jenkins",
        "office",
        "trouble",
        "mx-backup",
        "imap-eu",
        "mail-out",
        # Fifth review: spellings of the same kinds.
        "smtpout",
        "smtpout1",
        "mailout",
        "mailin",
        "mxbackup",
        "backup-mx",
        "mta1",
        "inbound",
        "outbound",
        "donotreply",
        "do-not-reply",
        "postmaster2",
        "webmaster-1",
        "pds1",
        "pds-1",
        "pds-eu",
        "auth2",
        "login2",
        "static2",
        "mcp3",
        # Sixth review: more spellings of the same kinds.
        "mxbackup1",
        "mail-relay1",
        "mailgw1",
        "smarthost",
        "mailhub",
        "outbound-mail",
        "return-path",
        "api-eu",
        "auth-eu",
        "login-eu",
        "www-eu",
        "cdn-eu",
        "api-v2",
        "sign-in",
        "log-in",
        "sign-up",
        "openid",
        "saml",
        "idp",
        "bsky-social",
        "atproto-pds",
        "pdsadmin",
        "jetstream-us",
        "robot-admin1",
        "robotadmin",
        "postmaster-eu",
        # Seventh review: a region and a number together.
        "api-eu-2",
        "auth-eu1",
        "mail-eu-1",
        "postmaster-eu-1",
        "autodiscover-eu-1",
        "apiv2",
        "mcpv1",
        "robot-wiki",
        "robotwiki",
        "robot-platform",
        "bsky-moderation",
        "robot-operator",
        "bsky-appview",
        "bsky-labeler",
        "bsky-ozone",
        "bsky-plc",
        # Fourteenth review: names discovery or a well-known URI gives a meaning, status pages,
        # the zone apex, and literal values.
        *("well-known", "wellknown", "jwks", "jwk", "caldav", "carddav", "caldavs", "webdav"),
        *("dav", "calendar", "contacts", "openid-configuration", "oauth-authorization-server"),
        *("oauth-protected-resource", "host-meta", "webfinger", "nodeinfo", "change-password"),
        *("atproto-did", "assetlinks", "pki-validation", "acme-challenge", "timezone"),
        *("statuspage", "status-page", "uptime", "apex"),
        *("null", "undefined", "true", "false", "nan", "infinity", "none", "nil", "void"),
        *("yes", "off"),
        # Twenty-fifth review: account and security mail, help desks and notices that would
        # pass for the platform's own; Exchange and Skype for Business client hosts; network
        # and cloud metadata names.
        *("password", "reset", "recovery", "account-recovery", "verify-email", "security-alert"),
        *("notifications", "alerts", "confirm", "helpdesk", "customer-support", "security-team"),
        *("abuse-desk", "ews", "activesync", "msexchange", "ipv4", "ipv6", "metadata"),
        *("password-reset", "reset-password", "passwords", "recover-account", "confirm-email"),
        *("email-verification", "verify-account", "unlock-account", "login-alert", "2fa", "mfa"),
        *("help-desk", "help-desk-2", "servicedesk", "service-desk", "customer-service"),
        *("support-team", "abuse-team", "security-alerts", "trust-center", "billing-support"),
        *("trust-and-safety", "notification", "notify", "appeals", "suspended", "passkey"),
        *("robot-password", "bsky-alerts", "robot-notifications", "atproto-recovery"),
        *("ms-exchange", "ews2", "eas", "mapi", "oab", "ecp", "adfs", "sts", "lyncweb"),
        *("lyncdiscoverinternal", "meet", "dialin", "sipinternal"),
        *("ip4", "ip6", "ipv62", "ipv4-only", "ipv4only", "ipv6only", "instance-data", "imds"),
        *("loopback", "link-local", "ip6-localhost", "ip6-allnodes", "metadata2", "dualstack"),
        # Thirty-first review: network service hosts, account portals, certificate authorities.
        *("wap", "tftp", "whois", "rdap", "turns", "stuns", "myaccount", "my-account"),
        *("root-ca", "rootca", "intermediate-ca", "autodiscovery", "mobile-api", "whois2"),
        # Thirty-second review: more of the same kinds.
        *("sipfed", "ssl", "letsencrypt", "autoconfiguration", "discovery", "mta-sts-policy"),
        # Review 34: mail services' hosts, resolvers, proxy config, consoles and docs.
        *("pm-bounces", "em1234", "url1234", "em7", "sendgrid", "postmark", "amazonses"),
        *("doh", "dns-query", "resolver", "resolvers", "nameserver", "nameservers", "pac"),
        *("admin-panel", "adminpanel", "api-docs", "apidocs", "api-gateway", "apigateway"),
        *("healthcheck", "health-check", "auth-portal", "developer-portal", "developer-docs"),
        *("plcdirectory", "plc-directory", "pdsmain", "appview-prod", "appviewprod"),
        # Review 35: more of the same kinds.
        *("send", "click", "track", "ses", "brevo", "mailersend", "zoho", "sparkpost-bounces"),
        *("admin-console", "admin-dashboard", "adminlogin", "admincp", "superadmin", "openapi"),
        *("backoffice", "developer", "api-console", "docs-api", "swagger-ui", "graphiql"),
        *("oauth-server", "wiki-admin", "wikiadmin", "wiki-api", "robot-mcp", "mcp-robot"),
        *("mcp-api", "www-robot", "myrobot", "api-key", "proxy-config", "pac-file", "autoproxy"),
        *("dns-over-https", "dns-over-tls", "dot", "nextdns", "adguard", "pihole", "redoc"),
        # Review 36: sign-on and identity providers, VPNs and proxies, list mail, the
        # platform's sign-in and docs.
        *("sign-on", "signon", "single-sign-on", "keycloak", "okta", "auth0", "iam", "cas"),
        *("openvpn", "wireguard", "ipsec", "squid", "inbox", "unsubscribe", "optout"),
        *("robot-signin", "robot-sign-in", "robotsignup", "robot-docs", "docs-robot"),
        # Review 37: appliances and gateways by their kind, a mail service's variant.
        *("citrix", "printer", "nas", "synology", "unifi", "plex", "home-assistant"),
        *("homeassistant", "autoconf-2", "phishing"),
    ],
)
def test_shapes_of_the_kind_are_refused(slug):
    problem = slug_problem(slug)
    assert problem and "reserved" in problem
    assert slug_from_host(f"{slug}.example.org", "example.org") is None


@pytest.mark.parametrize("slug", WHOLE_NAME_SPELLINGS_FREE)
def test_well_known_names_and_literals_are_reserved_only_whole(slug):
    assert slug_problem(slug) is None
    assert validate_slug(slug) == slug
    assert slug_from_host(f"{slug}.example.org", "example.org") == slug


@pytest.mark.parametrize("slug", HOST_SPELLINGS_REFUSED)
def test_host_names_are_reserved_in_hosts_spellings(slug):
    problem = slug_problem(slug)
    assert problem and "reserved" in problem
    assert slug_from_host(f"{slug}.example.org", "example.org") is None


def test_one_rule_per_kind_for_every_listed_name():
    # Each name numbered, versioned and split: the same verdict as the rest of its kind.
    assert [slug for slug in EVERY_WHOLE_NAME_SPELLING if slug_problem(slug)] == []
    assert [slug for slug in EVERY_HOST_SPELLING if not slug_problem(slug)] == []


# Python's `$` also matches before a final "\n": a validator using match() with `^...$`
# accepted "www\n" (a reserved name) and "notes\n" (a wiki nobody could delete). Every
# trailing, leading or inner line break or space is refused, for ordinary and reserved names.
_BREAKS = ["\n", "\r\n", "\r", " ", "\t", "\x0b", "\x0c", "\x85", "\u2028", "\x00"]


@pytest.mark.parametrize("name", ["notes", "www", "mta-sts", "robot-admin", "mail1"])
@pytest.mark.parametrize("brk", _BREAKS, ids=[repr(b) for b in _BREAKS])
def test_a_slug_with_a_line_break_or_space_anywhere_is_refused(name, brk):
    for slug in (name + brk, brk + name, name[:2] + brk + name[2:]):
        assert slug_problem(slug), repr(slug)


# Twenty-sixth review: team-support, it-team, 169-254-169-254, metadata-google and selector1
# were free. Each kind, not only the name found: an office's desk or team either way round,
# a network address spelled with hyphens, every name of a cloud metadata service, and the DKIM
# selectors the big mail services publish.
TWENTY_SIXTH_REFUSED = [
    # Desks and teams of an office, and the pair the other way round.
    *("team-support", "it-team", "itteam", "it-support", "tech-support", "technical-support"),
    *("noc-team", "soc-team", "sysadmin-team"),
    *("admin-team", "admins-team", "staff-team", "mod-team", "moderators-team", "legal-team"),
    *("compliance-team", "moderation-team", "security-staff", "it-staff", "it-helpdesk"),
    *("it-service", "it-services", "it-desk", "it-department", "help-line", "helpline"),
    *("support-ticket", "support-tickets", "support-chat", "support-portal", "support-line"),
    *("support-request", "support-hotline", "support-it", "support-tech", "support-staff"),
    *("team-it", "team-help", "team-helpdesk", "team-security", "team-admin", "team-abuse"),
    *("teams-support", "staff-support", "desk-support", "helpdesk-it", "it-team2"),
    *("it-team-2", "tech-support-v2", "billing-portal", "privacy-request", "fraud-hotline"),
    # Addresses: four numbers 0-255 joined by hyphens, alone or among words; IPv6 written out.
    *("169-254-169-254", "10-0-0-1", "127-0-0-1", "192-168-1-1", "0-0-0-0", "100-100-100-200"),
    *("255-255-255-255", "172-16-0-1", "010-000-000-001", "app-10-0-0-1", "10-0-0-1-admin"),
    *("my-wiki-169-254-169-254", "fd00-ec2-0-0-0-0-0-254", "0-0-0-0-0-ffff-a9fe-a9fe"),
    *("fe80-0-0-0-0-0-0-1",),
    # Cloud metadata services by every name they answer at.
    *("metadata-google", "metadata-google-internal", "metadatagoogleinternal"),
    *("google-metadata", "metadata-internal", "computemetadata", "compute-metadata"),
    *("instance-metadata", "instance-data-ec2-internal", "ec2-metadata", "ec2-metadata-1"),
    *("metadata-azure", "azure-metadata", "metadata-azure-com", "metadata-tencentyun"),
    *("metadata-packet-net", "kubernetes-default", "kubernetes-default-svc", "metadata-google2"),
    *("kubernetes",),  # twenty-seventh review: the search domain's name, as `metadata` is
    # DKIM selectors of the big mail services.
    *("selector1", "selector2", "selector3", "selector-1", "selector", "google", "protonmail"),
    *("protonmail2", "protonmail3", "zendesk1", "zendesk2", "smtpapi", "domainkey"),
    *("domainkeys", "fm1", "fm2", "fm3", "sig1", "s1024", "s2048", "dkim1", "google2"),
]
# The other side: a team or a support wiki of anything that is no office, words that hold
# `team` or `support` without a desk pair, numbers that are no address (too few, too big),
# other names that start like a metadata service, and names that end in a number but are no
# known selector.
TWENTY_SIXTH_FREE = [
    *("team-wiki", "team-up", "team-notes", "teams-notes", "design-team", "dev-team", "red-team"),
    *("my-team", "team-alpha", "steam", "steamship", "teamwork", "teamwork-notes", "esteem"),
    *("libfoo-support", "python-support", "support-group", "supportive", "edit-team"),
    *("summit-team", "team-chat", "team-members", "itinerary", "items", "tech-notes"),
    *("techno", "opsec-notes", "legal-cases", "user-service", "staffing-plans"),
    *("1-2-3", "2024-12-05", "2024-12-05-notes", "256-1-1-1", "10-0-0-256", "1-2-3-4000"),
    *("v1-2-3-4", "route-66", "area-51-notes", "a-b-c-d-e-f", "cafe-babe-notes"),
    *("metadata-notes", "kubernetes-notes", "google-docs-tips", "instance-notes"),
    *("selectors-guide", "css-selector", "fm-radio", "fm10", "sig", "signal", "s2024", "k12"),
]


# Twenty-seventh review: a protocol's or a service's name and anything after it was a host;
# now only a number, a region or a word of role after it is one. A team of engineers is no
# desk that writes to users.
TWENTY_SEVENTH_FREE = [
    *("pop-culture", "pop-art", "pop-punk", "pop-up-shop", "mta-subway", "mta-bus", "mx-linux"),
    *("dkim-notes", "imap-tutorial", "smtp-book", "relay-for-life", "plc-programming"),
    *("pds-notes", "bgs-rules", "devops-team", "infra-team", "ops-team", "operations-team"),
    *("pop-up", "mta-ok", "mx-it"),  # twenty-eighth review: not every two letters
]
TWENTY_SEVENTH_REFUSED = [
    *("smtp-eu-west", "pds-us-east-1", "pds-ap-southeast-2", "relay-eu", "mx-us", "pop3-in"),
    *("smtp-relay", "mx-backup", "pds-europe", "relay-1", "imap-2", "mta-sts", "plc-staging"),
]


# Twenty-ninth review: services run per region or deployment, by cloud region or role.
TWENTY_SEVENTH_REFUSED += [
    *("api-eu-west-1", "auth-us-east-1", "mcp-prod", "plc-directory", "www-eu-west-1"),
    *("mcp-eu-central-1", "mail-eu-west-1", "autodiscover-eu-west-1", "mta-sts-eu-west-1"),
    *("api-prod", "api-staging", "www-staging", "auth-prod", "api-internal"),
]
TWENTY_SEVENTH_FREE += ["web-dev", "app-test", "about-us", "node-js", "media-public"]
TWENTY_SEVENTH_FREE += ["web-server", "media-server", "web-proxy", "app-console", "web-edge"]
# Review 36: any two letters after a regional service was read as a region.
TWENTY_SEVENTH_FREE += ["web-ui", "app-ai", "api-go", "pds-me", "mcp-ok", "app-js", "web-xr"]


@pytest.mark.parametrize("slug", TWENTY_SEVENTH_FREE)
def test_names_that_only_begin_like_a_host_are_free(slug):
    assert slug_problem(slug) is None


@pytest.mark.parametrize("slug", TWENTY_SEVENTH_REFUSED)
def test_hosts_by_number_region_or_role_are_refused(slug):
    assert "reserved" in (slug_problem(slug) or "")


@pytest.mark.parametrize("slug", TWENTY_SIXTH_REFUSED)
def test_desks_addresses_metadata_names_and_selectors_are_refused(slug):
    assert SLUG_PATTERN.fullmatch(slug) and "--" not in slug, slug
    problem = slug_problem(slug)
    assert problem and "reserved" in problem and "choose another name" in problem
    with pytest.raises(BadRequest, match="reserved"):
        validate_slug(slug)
    assert slug_from_host(f"{slug}.example.org", "example.org") is None


@pytest.mark.parametrize("slug", TWENTY_SIXTH_FREE)
def test_everyday_names_beside_those_kinds_stay_free(slug):
    assert slug_problem(slug) is None
    assert slug_from_host(f"{slug}.example.org", "example.org") == slug


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("it-team", "help desk"),
        ("169-254-169-254", "network address"),
        ("metadata-google", "cloud metadata"),
        ("selector1", "DKIM selector"),
        ("fm1", "DKIM selector"),
    ],
)
def test_the_refusal_says_which_kind(slug, reason):
    assert reason in slug_problem(slug)


def test_every_dashed_ipv4_address_is_refused_and_no_number_outside_0_to_255():
    octets = [0, 1, 9, 10, 99, 100, 127, 169, 199, 200, 249, 250, 254, 255]
    for a in octets:
        for b in (0, 254, 255):
            assert slug_problem(f"{a}-{b}-{a}-{b}"), (a, b)
    for bad in (256, 300, 999, 1000):
        assert slug_problem(f"{bad}-0-0-1") is None, bad
        assert slug_problem(f"10-0-0-{bad}") is None, bad


# Review 39: the platform's name spelled as a look-alike would spell it, a numbered www, and
# payment words were free.
LOOKALIKES_REFUSED = ["r0bot", "rob0t", "roboot", "the-robot", "r-o-b-0-t", "realrobot"]
LOOKALIKES_REFUSED += ["b1uesky", "0tterwiki", "atpr0to", "robootwtf", "the-robots", "bbsky"]
LOOKALIKES_REFUSED += ["ww3", "ww-1", "wallet", "wallets", "invoices", "checkout"]
# Review 40: the same spellings joined to a word of office, letters for letters, and more
# words of office.
LOOKALIKES_REFUSED += ["r0bot-support", "r0botsupport", "rob0t-team", "support-r0bot", "otterwlki"]
LOOKALIKES_REFUSED += ["b1uesky-team", "0tterwiki-help", "the-robot-team", "robot-secure"]
LOOKALIKES_REFUSED += ["secure-robot", "bsky-dev", "atproto-dev", "otterwiki-com", "rob0t-hq"]
LOOKALIKES_FREE = ["web-dev", "my-site", "dev-notes", "blue-sky-notes", "corn-farm", "theory"]
LOOKALIKES_FREE += ["robotics", "roboto", "robin", "rabbit", "robo", "throbot", "ottawiki"]
LOOKALIKES_FREE += ["otter", "robots-fan", "the-otter", "reboot", "r2d2", "b0b"]


# Review 41: service hosts beside reserved ones (ldaps beside ldap, kdc beside kerberos, scep
# beside pki ...), hosting panels and mail software by name, the schemes, XMPP components,
# and the platform's services and sign-in words in more spellings.
LOOKALIKES_REFUSED += ["ldaps", "kdc", "pdc", "dc1", "dc-2", "scep", "ndes", "certsrv", "enroll"]
LOOKALIKES_REFUSED += ["enrollment", "mdm", "intune", "conference", "muc", "pubsub", "webcal"]
LOOKALIKES_REFUSED += ["ical", "http", "https", "plesk", "webmin", "phpmyadmin", "roundcube"]
LOOKALIKES_REFUSED += ["rainloop", "zimbra", "syslog", "snmp", "dhcp", "pxe", "mailbox"]
LOOKALIKES_REFUSED += ["postfix", "dovecot", "tor", "onion", "public-api", "publicapi", "did-web"]
LOOKALIKES_REFUSED += ["bsky-network", "client-metadata", "jwks-json", "security-txt", "didweb"]
LOOKALIKES_REFUSED += ["ldaps2", "webmin-1", "internal-auth", "official-mcp", "robots-txt"]
LOOKALIKES_FREE += ["conference-2026", "mailbox-tips", "http-notes", "tor-hiking", "onion-soup"]
LOOKALIKES_FREE += ["public-notes", "docs-json", "my-conference", "public-domain", "webcalendar"]
LOOKALIKES_FREE += ["dcomics", "enrolled", "https-guide", "muckraker", "torrent", "pubsub-notes"]
# Review 42: more service hosts by name, kind, number or role; their everyday neighbours free.
LOOKALIKES_REFUSED += ["lync", "keyserver", "pgp", "gpg", "wkd", "keys", "docker", "k8s"]
LOOKALIKES_REFUSED += ["kube", "harbor", "npm", "pypi", "argocd", "kibana", "elasticsearch"]
LOOKALIKES_REFUSED += ["splunk", "loki", "jaeger", "zipkin", "minio", "storage", "bucket", "blobs"]
LOOKALIKES_REFUSED += ["loadbalancer", "lb1", "firewall", "fw1", "vpn-gw", "corp", "www-dev"]
LOOKALIKES_REFUSED += ["webserver", "nginx", "apache", "traefik", "caddy", "haproxy", "docker2"]
LOOKALIKES_REFUSED += ["lb100", "lb-101", "fw-250", "dc001"]  # review 44: three digits
LOOKALIKES_FREE += ["docker-notes", "storage-tips", "apache-helicopter", "caddyshack", "keystone"]
LOOKALIKES_FREE += ["timeline", "time-travel", "lbj", "blob-fish", "corporate", "kubernetes-notes"]
LOOKALIKES_FREE += ["lb-2024", "fw-2024", "dc-2024"]  # review 43: a year is no host number


@pytest.mark.parametrize("slug", LOOKALIKES_REFUSED)
def test_look_alikes_of_the_platform_and_its_hosts_are_refused(slug):
    assert "reserved" in slug_problem(slug)


@pytest.mark.parametrize("slug", LOOKALIKES_FREE)
def test_names_that_only_resemble_the_platform_stay_free(slug):
    assert slug_problem(slug) is None
