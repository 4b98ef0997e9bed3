"""Wiki slugs: what a valid one looks like, which are reserved, and how a Host names one."""

from __future__ import annotations

import re

from app.core.errors import BadRequest

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$")

# Host names that mean something on a domain, so no user may own `{slug}.{domain}` under them
# (and Caddy's on-demand TLS must never get a certificate for them). One group per reason;
# names a valid slug cannot spell anyway (`_mta-sts`, `_acme-challenge`, `xn--…`, 1-2
# letters) are left out. `statuspage`: hosted status pages (Atlassian Statuspage and its kind)
# are pointed at a `status` or `statuspage` host; `apex`: DNS providers' word for the zone's
# own name. Network services by their hosts: WAP gateways, TFTP (phones and network boots
# fetch from `tftp`), RFC 3912 WHOIS and RFC 9082 RDAP servers, RFC 7065 TURN and STUN over
# TLS (`turns`, `stuns`), account portals (`myaccount`) and certificate authorities
# (thirty-first review: each was free). Single sign-on and identity providers (`sign-on`,
# CAS, Keycloak, Okta, Auth0, IAM) and VPN and proxy endpoints by their software's name
# (OpenVPN, WireGuard, IPsec, Squid) (review 36: each was free); remote-access gateways and
# the appliances a network names by their kind (Citrix, printers, NAS, Synology, UniFi, Plex,
# Home Assistant) and `autoconf` beside autoconfig (review 37). The TLS spellings of the
# protocols above (LDAPS, NNTPS, XMPPS, IRCS), Kerberos KDCs and Windows domain controllers
# (`pdc`, `bdc`; `dc1` by shape below), certificate enrolment (SCEP, Microsoft NDES and
# `certsrv`), device management (MDM, Intune), hosting control panels (Plesk, Webmin,
# phpMyAdmin, DirectAdmin ...) and network boot and management services (syslog, SNMP, DHCP,
# PXE, NetBIOS, IPMI, iDRAC) (review 41: each was free). Skype for Business's `lync`, OpenPGP
# key servers (`keyserver`, `pgp`, `gpg`, the Web Key Directory's `wkd`), container and package
# registries (Docker, Harbor, npm, PyPI), cluster hosts (k8s, kube, Argo CD), logging and
# tracing (Kibana, Elasticsearch, Splunk, Loki, Jaeger, Zipkin), object storage (MinIO), and
# network and web servers by kind and name (load balancer, firewall, nginx, Traefik, HAProxy)
# (review 42: each was free). Telemetry and ad hosts (`telemetry`, OpenTelemetry's `otel` and
# `otlp` collectors, `ads`, `adserver`), IPFS gateways (`ipfs`, `ipns`, `dnslink`), and the
# names of files a site serves at its root that crawlers ask for (`favicon`, humans.txt,
# ads.txt and app-ads.txt, sellers.json) (review 59: ipfs, favicon, humans ... were free).
# Databases, message brokers and cluster services by their software's name, beside `redis`
# and `elasticsearch` (review 60: mysql, postgres, kafka, consul ... were free). Sign-in
# standards and providers (WebAuthn, FIDO, Authentik, Shibboleth ...), the fediverse's
# discovery and software, time and RPC services, server management controllers (BMC, iLO,
# vCenter, Proxmox), CDNs, payment and analytics services, code and package hosts (Forgejo,
# Bitbucket, ghcr, Go's module proxy and checksum database), self-hosted suites, VPN
# coordinators and resolvers, and AI services a platform could front (review 61: each was
# free). Push notification, log and error collection, software update and cluster ingress
# hosts (review 68: each was free); font hosts, DNS's own words and `wwww` (review 70);
# mirrors, tracking pixels and beacons, Lync's `sipfederationtls` (review 71).
_SERVICE_HOSTS = """
    www www1 www2 www3 web site home main api apis app apps auth oauth oidc sso identity
    login logout signin signout signup register account accounts mcp static assets cdn media
    files img images upload uploads download downloads status docs doc help support blog about
    admin administrator dashboard console portal panel settings billing pay payment payments
    shop store dev test testing staging stage prod production demo sandbox preview
    internal intranet extranet system root git svn build builds deploy metrics monitor
    monitoring grafana prometheus health healthz ping graphql wss websocket socket events
    webhook webhooks callback callbacks redirect link links url feed feeds rss atom sitemap
    search news forum community chat irc xmpp jabber matrix sip voip turn stun vpn gateway
    edge origin relay router node server servers host hosts cloud ns1 ns2 ns3 ns4 dns dns1
    dns2 ntp ldap kerberos radius database redis cache backup backups archive local
    localhost localdomain broadcasthost invalid example wiki wikis
    cpanel whm webdisk cpcalendars cpcontacts
    pki ocsp crl acme cert certs certificate certificates
    mobile amp default office gitlab github gitea jenkins jira confluence registry
    vault sentry analytics stats tracking openid saml idp
    statuspage status-page uptime apex
    wap tftp whois rdap turns stuns myaccount my-account root-ca rootca intermediate-ca
    autodiscovery mobile-api
    healthcheck healthchecks health-check health-checks
    superadmin super-admin admincp backoffice back-office developer swagger swagger-ui openapi
    redoc graphiql myrobot my-robot
    signon sign-on single-sign-on keycloak okta auth0 iam idm cas
    openvpn wireguard ipsec squid
    citrix printer printers nas synology unifi plex homeassistant home-assistant autoconf
    ldaps kdc pdc bdc scep ndes certsrv certenroll mdm intune plesk webmin phpmyadmin
    phppgadmin adminer directadmin ispconfig virtualmin syslog snmp dhcp pxe netbios ipmi
    idrac nntp nntps xmpps ircs
    lync keyserver keyservers pgp gpg wkd docker k8s kube kubernetes-api harbor npm pypi
    argocd kibana elasticsearch opensearch splunk loki jaeger zipkin minio loadbalancer
    load-balancer firewall nginx traefik haproxy
    telemetry otel otlp ads adserver ipfs ipns dnslink favicon humans ads-txt app-ads sellers
    hostname
    mysql postgres postgresql mariadb mongodb mongo mqtt amqp rabbitmq kafka etcd consul nomad
    memcached elastic rundeck
    webauthn fido u2f activitypub fediverse mastodon sitemaps grpc sse ptp timeserver
    bmc ilo vcenter esxi proxmox cloudflare akamai fastly stripe paypal matomo plausible umami
    authentik authelia shibboleth forgejo bitbucket ghcr quay artifactory goproxy sumdb
    nextcloud pgadmin coturn synapse tailscale headscale unbound openai chatgpt llm
    push logs errors update updates autoupdate ingress egress fonts font cname alias wwww
    mirror mirrors statistics mods hooks pixel beacon nodes direct sipfederationtls
"""
# Mail: RFC 2142 role mailboxes (info marketing sales support abuse noc security postmaster
# hostmaster usenet news webmaster www uucp ftp), the CA/Browser Forum Baseline Requirements
# 3.2.2.4.4 validation mailboxes (admin administrator webmaster hostmaster postmaster), mail
# client discovery (Thunderbird autoconfig, Microsoft autodiscover and lyncdiscover), RFC 8461
# MTA-STS (`mta-sts.{domain}` serves the policy), the OpenPGP Web Key Directory
# (`openpgpkey.{domain}`), mailing-list conventions (RFC 2142 section 6 asks lists for LIST-
# REQUEST; list servers answer as majordomo, listserv, mailman, sympa), mail authentication
# records (DKIM, DMARC, SPF, BIMI), and the usual mail service hosts; the hosts mail services
# ask a domain to point at them, by the service's name and by the names they give (Postmark's
# return path `pm-bounces`; SendGrid's numbered `em1234` and `url1234`, by shape below:
# review 34; Resend's `send`, link tracking's `click` and `track`: review 35), and the
# addresses a list's mail points at (`unsubscribe`, `optout`, `inbox`: review 36), and the
# mailbox phishing is reported to (`phishing`: review 37); webmail and mail server software by
# name, as its hosts are named (Roundcube, Zimbra, Postfix, Dovecot ...: review 41). Microsoft
# Exchange's client hosts, which Outlook and phones find through autodiscover or are pointed at: EWS
# (Exchange Web Services), ActiveSync (`eas`, `activesync`), MAPI over HTTP, the Offline
# Address Book (`oab`), the Exchange Control Panel (`ecp`), RPC over HTTP and `msexchange`; AD
# FS, which Exchange Online signs in through (`adfs`, `sts`); and the Skype for Business
# (Lync) simple URLs and discovery hosts (`meet`, `dialin`, `lyncweb`, `lyncdiscoverinternal`,
# `sipexternal`, `sipinternal`, and `sipfed`, the federation host) (twenty-fifth review: ews,
# activesync, msexchange were free; thirty-second: sipfed). RFC 8314's implicit-TLS mail
# submission (`submissions`), RFC 2033 LMTP, RFC 8460 SMTP TLS reporting (`tlsrpt`, reports to
# `smtp-tls-reporting`), the mailboxes DMARC and abuse reports go to, and RFC 5804 ManageSieve
# (review 59: each was free); auto-reply hosts and `smtp-tls` (review 69).
_MAIL = """
    info marketing sales support abuse noc security postmaster hostmaster usenet news webmaster
    uucp ftp sftp ftps admin administrator mail email mailer-daemon mailerdaemon no-reply
    noreply nobody webmail smtp smtps imap imaps pop pop3 pop3s submission mx1 mx2 mta
    mta-sts autoconfig autodiscover lyncdiscover openpgpkey privacy legal compliance contact
    hello press jobs careers team ssl-admin ssladmin sysadmin owa exchange outlook trouble
    list lists list-request listmaster listserv majordomo mailman sympa
    mailer mailers newsletter newsletters bounce bounces dkim dmarc spf bimi
    inbound outbound donotreply do-not-reply dontreply mailin mailout smtpin smtpout
    smarthost mailhub mailgw returnpath return-path
    ews eas activesync msexchange mapi oab ecp rpc adfs sts
    meet dialin lyncweb lyncdiscoverinternal sipexternal sipinternal sipfed
    autoconfiguration mta-sts-policy
    pm-bounces postmark sendgrid mailgun mandrill mailchimp sparkpost mailjet amazonses
    send click track ses brevo sendinblue mailersend zoho sparkpost-bounces
    inbox unsubscribe optout opt-out phishing
    roundcube rainloop snappymail squirrelmail zimbra sogo postfix dovecot exim sendmail
    rspamd mailcow
    submissions lmtp lmtps tlsrpt smtp-tls-reporting dmarc-reports abuse-reports sieve
    managesieve smtp-tls autoreply auto-reply autoresponder list-unsubscribe
"""
# Proxy and network discovery: WPAD (browsers fetch `wpad.{domain}/wpad.dat` for a proxy
# config) and proxy auto-config files (`pac`), ISATAP (RFC 5214 routers answer as `isatap`),
# Microsoft device enrolment, hosts that remote-access clients look up, and resolvers: RFC
# 8484 DNS over HTTPS (`doh`, its `/dns-query` path), name servers and resolvers by name
# (review 34: pac, doh, resolver, nameserver were free).
_DISCOVERY = """
    wpad isatap proxy socks socks5 enterpriseregistration enterpriseenrollment msoid
    discovery ssl tls letsencrypt
    ssh telnet rdp vnc remote
    pac proxy-pac doh dns-query resolver resolvers nameserver nameservers
    pac-file proxy-config proxy-auto-config autoproxy dns-over-https dns-over-tls dot
    nextdns adguard pihole pi-hole
"""
# Network and cloud metadata names: the address families (`ipv4`, `ipv6`; test and dual-stack
# hosts are named so), RFC 7050's `ipv4only.arpa`, the loopback and link-local names (RFC 3927)
# and the IPv6 names of Debian's /etc/hosts (ip6-localhost, ip6-loopback, ip6-allnodes ...),
# and the cloud instance metadata services a server reaches by name: Google Compute Engine's
# `metadata` (metadata.google.internal), Amazon EC2's `instance-data` and Azure's IMDS
# (twenty-fifth review: ipv4, ipv6, metadata were free). Those metadata services by every name
# they answer at, as a slug spells it: Google's `metadata.google.internal` and its
# `computeMetadata` path, EC2's `instance-data.ec2.internal`, Azure's and Tencent Cloud's
# `metadata.azure.com` and `metadata.tencentyun.com`, Equinix Metal's `metadata.packet.net`,
# and the Kubernetes API server a pod reaches as `kubernetes.default.svc` (twenty-sixth review:
# metadata-google was free). Their addresses (169.254.169.254, Alibaba's 100.100.100.200,
# EC2's fd00:ec2::254) are reserved by shape below (_IP_ADDRESS).
_NETWORK = """
    ipv4 ipv6 ip4 ip6 ipv4only ipv6only dualstack loopback link-local ip6-localhost
    ip6-loopback ip6-allnodes ip6-allrouters ip6-localnet ip6-mcastprefix metadata
    instance-data imds
    metadata-google metadata-google-internal google-metadata metadata-internal
    computemetadata compute-metadata instance-metadata instance-data-ec2-internal
    ec2-metadata metadata-azure azure-metadata metadata-azure-com
    metadata-tencentyun metadata-packet-net kubernetes kubernetes-default kubernetes-default-svc
"""
# DKIM selectors (RFC 6376 section 3.6.2.1: a key is published at
# `<selector>._domainkey.{domain}`). No slug can spell `_domainkey`, so a wiki never sits at a
# selector's record and these matter less; reserved all the same are the selectors the big
# mail services publish by name, as DNS tools, mail scanners and people read
# `selector1.{domain}` as part of the domain's mail set-up: Microsoft 365's selector1 and
# selector2 (every `selector<n>`), Google Workspace's `google`, Proton's protonmail,
# protonmail2 and protonmail3, Zendesk's zendesk1 and zendesk2, SendGrid's `smtpapi`, and the
# word itself (`domainkey`). Numbered selectors too short to list (Fastmail's fm1-fm3,
# Mailchimp's k1-k3, iCloud's sig1, Yahoo's s1024 and s2048) are reserved by shape below
# (_DKIM_SELECTOR); `dkim` and `default` are in the lists above (twenty-sixth review: selector1
# was free).
_DKIM = """
    selector google protonmail zendesk smtpapi domainkey domainkeys
"""
# Discovery: RFC 8615 well-known URIs (`/.well-known/<name>`) by their names, and the hosts
# clients look up for the same services: RFC 6764 CalDAV and CardDAV (their `.well-known`
# names and the `caldav`/`carddav` hosts), RFC 4918 WebDAV, calendar and contact hosts, RFC
# 7517 JSON Web Key Sets (`jwks_uri`, often `/.well-known/jwks.json`), RFC 8414 OAuth server
# metadata, RFC 9728 protected-resource metadata, OpenID Connect Discovery 1.0
# (`openid-configuration`), RFC 6415 host-meta, RFC 7033 WebFinger, NodeInfo, RFC 7808
# time-zone data, the W3C change-password URL, DIF DID Configuration, ATProto handle
# resolution (`/.well-known/atproto-did`), Apple app-site association and Android asset links,
# the CA/Browser Forum `pki-validation` path and RFC 8555's `acme-challenge`; and the rest of
# the IANA Well-Known URIs registry (RFC 8615 section 3.1) whose names fit a slug, a name
# registered with a suffix (`security.txt`, `gpc.json`, `nostr.json`) by its stem (`ni` and `rd`
# are shorter than any slug).
_WELL_KNOWN = """
    well-known wellknown caldav caldavs carddav carddavs webdav dav calendar calendars
    contacts jwks jwk openid-configuration oauth-authorization-server oauth-protected-resource
    host-meta webfinger nodeinfo timezone change-password did-configuration atproto-did
    apple-app-site-association assetlinks pki-validation acme-challenge
    ai-plugin amphtml api-catalog appspecific ashrae brski cmp coap core csaf csaf-aggregator
    csvm dnt dnt-policy dots ecips edhoc enterprise-network-security
    enterprise-transport-security est genid gnap-as-rs gpc gs1resolver hoba hosting-provider
    http-opportunistic idp-proxy jmap keybase knx lnurlp looking-glass masque matrix mercure
    microsoft-identity-association mud nfv-oauth-server-configuration nostr ohttp-gateway
    open-resource-discovery openid-federation openid-credential-issuer openorg openpgpkey oslc
    posh privacy-sandbox-attestations private-token-issuer-directory probing pvd
    reload-config repute-template resourcesync sbom security ssf-configuration sshfp stun-key
    tdmrep terraform thread time tor-relay tpcd traffic-advice trust uma2-configuration wot
"""
# Service hosts that are everyday words too, reserved only whole: the schemes themselves
# (`http`, `https`), XMPP's component hosts (multi-user chat at `conference` or `muc`,
# XEP-0060 `pubsub`), calendar subscription hosts (`webcal`, `ical`), device enrolment
# (`enroll`, `enrollment`), `mailbox`, and Tor's names (`tor`, `onion`) (review 41: each was
# free); and key, storage and web server hosts that are everyday words (`keys`, `storage`,
# `bucket`, `blob`, `corp`, `apache`, `caddy`: review 42; `key`: review 59). A conference or
# a mailbox wiki of something (`conference-2026`, `mailbox-tips`) stays free.
_SERVICE_WORDS = """
    http https conference muc pubsub webcal ical enroll enrollment mailbox tor onion
    keys storage bucket buckets blob blobs corp apache caddy webserver key
"""
# Literal values: JSON and JavaScript (null, true, false, undefined, NaN, Infinity, void),
# Python (None), Go, Ruby and Lua (nil), and YAML 1.1's booleans that fit a slug (yes, off):
# a script, template or config that reads the slug as text would read these as values.
_LITERALS = """
    null undefined true false nan infinity void none nil yes off
"""
# Names that would pass for the platform, its operators or the services it signs in with:
# among them the ATProto network's own services and endpoints (a PDS, the entryway, the relay
# or BGS, an AppView, labelers and Ozone, XRPC, DIDs and handles, feed generators, Jetstream).
# And the words of the mail a platform sends about an account (password resets, recovery,
# e-mail verification, security alerts, notifications, two-factor codes, suspensions and
# appeals) and of its help desks: a phishing page at `password-reset.{domain}` would pass for
# the platform's own (twenty-fifth review: password, reset, recovery, verify-email, helpdesk
# ... were free). The sign-in network's DID methods (`did:web`, `did:plc`, `did:key`) and the
# OAuth client metadata document ATProto clients publish (`client-metadata`, the `client_id`)
# (review 41: each was free). The platform's terms and where abuse, spam and feedback are
# reported (review 68: each was free); the account and credential words a page telling people
# to end their sessions or renew a token would pass under (review 69).
_IMPERSONATION = """
    robot robots robotwtf robot-wtf otterwiki official staff operator operators moderator
    moderators mod owner platform service services verify verification verified secure trust
    safety bluesky bsky atproto atprotocol at-protocol plc otter-wiki
    pds xrpc did dids handle handles entryway bgs appview labeler labelers ozone firehose
    jetstream feedgen feed-generator
    password passwords passwd reset password-reset reset-password recovery recover
    account-recovery recover-account verify-email verify-account confirm confirmation
    confirm-email notification notifications notify notice notices alert alerts security-alert
    security-alerts helpdesk help-desk servicedesk service-desk customer-support
    customer-service customer-care security-team abuse-desk trust-and-safety twofactor 2fa mfa
    logon log-on
    otp totp passkey passkeys unlock suspended suspension appeal appeals
    wallet wallets invoice invoices checkout
    did-web did-plc did-key client-metadata oauth-client-metadata client-id
    terms tos terms-of-service terms-of-use report report-abuse reports feedback spam
    validate validation user users profile profiles session sessions token tokens superuser
    ticket tickets dmca copyright oauth-callback
"""
# Each group with the reason a refusal gives and how it matches. Host names (True) are
# reserved in the spellings hosts use too: numbered or versioned (www1, api-v2), without
# hyphens (sign-in), with a region after a regional service (api-eu); a real host is named so.
# Well-known names and literal values (False) mean something only as the whole word: a client
# looks up `/.well-known/jwks` or `caldav.{domain}`, never `jwks-v2` or `dav2`, and a script
# reads `true` as a value, not `true1` or `no-ne`; so only the listed spelling is reserved.
_GROUPS = (
    (_SERVICE_HOSTS, "it names a service host", True),
    (_MAIL, "it names a mailbox or a mail service", True),
    (_DISCOVERY, "clients look it up for proxy or network discovery", True),
    (_NETWORK, "it names a network address or a cloud metadata service", True),
    (_DKIM, "it names a DKIM selector of a mail service", True),
    (_WELL_KNOWN, "clients look it up to discover a service (a well-known name)", False),
    (_SERVICE_WORDS, "it names a service host", False),
    (_LITERALS, "programs would read it as a literal value, not a name", False),
    (_IMPERSONATION, "it would pass for the platform", True),
)
# Each reserved name with the reason a refusal gives; the first group naming it wins.
RESERVED_REASONS = {
    name: reason for names, reason, _ in reversed(_GROUPS) for name in names.split()
}
RESERVED_SLUGS = frozenset(RESERVED_REASONS)
# The host names, reserved in hosts' spellings too; the rest are reserved only whole.
_HOST_NAMES = {
    name: reason
    for names, reason, host_spellings in reversed(_GROUPS)
    if host_spellings
    for name in names.split()
}
RESERVED_HOST_NAMES = frozenset(_HOST_NAMES)
RESERVED_WHOLE_NAMES = RESERVED_SLUGS - RESERVED_HOST_NAMES
# The host names also without their hyphens: `sign-in` is as reserved as `signin`.
_RESERVED_COMPACT = {
    **{name.replace("-", ""): reason for name, reason in _HOST_NAMES.items()},
    **_HOST_NAMES,
}
# What hosts add to a name: a number or a version (api2, auth-1, api-v2, mcpv1).
# reserved_reason also checks a host name without it, so every listed host is reserved with
# it. Both are stripped apart, so a name ending in `v` keeps it: `dev2` is `dev` numbered, as
# `dev-2` is (one pattern `-?v?\d+` read `dev2` as `de` version 2 and let it through).
_HOST_SUFFIXES = (re.compile(r"-?\d+$"), re.compile(r"-?v\d+$"))
_REGIONAL = frozenset(
    """www web api apps app auth login sso mcp static assets cdn media files img images upload
    uploads download mail email smtp imap pop3 webmail relay pds xrpc jetstream
    firehose appview bgs entryway postmaster hostmaster webmaster autodiscover autoconfig
    mta-sts""".split()
)
# The same kinds by shape: numbered hosts whose bare names are too short (or too odd) to be
# slugs themselves (mx2, ns5, gw1, imap4, pops3), mail hosts by their protocol and a role
# (smtp-relay, mx-backup, mailout, backup-mx ...), the sign-in network's services by region
# (pds-europe), and the platform's or its sign-in network's name joined to a word of office
# (robot-admin, support-bluesky, robotadmin ...).
_NUMBERED = re.compile(r"^(?:mx|ns|gw|ww|imap4|pops|ipv?[46])-?\d+$|^(?:dc|lb|fw)-?\d{1,3}$")
# A host's role or place after a protocol or service name: a number, a region code with its
# parts (eu, us-east-1), or a word of role (twenty-seventh review: `(pop|mta|relay|pds)-` and
# anything made pop-culture, mta-subway, relay-for-life and pds-notes reserved).
# Region codes of the big clouds and countries' codes hosts are named by (AWS, GCP, Azure:
# us-east-1, eu-west, ap-southeast-2, uk, de ...); not every two letters (pop-up, pds-me).
_REGION = (
    r"(?:us|eu|ap|uk|gb|de|fr|nl|jp|kr|sg|au|ca|br|cn|hk|tw|se|fi|ch|es|pl|ie|za|ae|il|sa"
    r"|na|emea|apac|latam)"
)
_HOST_ROLE = (
    rf"(?:\d+|{_REGION}(?:-(?:north|south)?(?:east|west|central)?)?(?:-?\d+)?|in|out|inbound|outbound|relay|gw|gateway|server"
    r"|host|backup|sts|mail|primary|secondary|internal|external|auth|submission|proxy|filter"
    r"|spam|europe|asia|africa|america|americas|oceania|east|west|north|south|central|staging"
    r"|prod|production|test|dev|beta|alpha|public|main|official|directory|console|dashboard)"
)
# A region code (api-eu, pds-us-2; not any two letters: web-ui, app-ai, api-go stay free,
# review 36), a cloud region (api-eu-west-1) or a deployment's role (mcp-prod, api-staging,
# api-internal), only after the names of services run per region:
# after any name it refused everyday ones (about-us, node-js, chat-ai), and the words of
# everyday work (web-dev, app-test, web-server, app-console: thirtieth review) stay free
# (twenty-ninth review: api-eu-west-1, auth-us-east-1, mcp-prod were free).
_REGION_SUFFIX = re.compile(
    rf"-(?:{_REGION}(?:-(?:north|south)?(?:east|west|central)?)?|staging|prod"
    r"|production|internal)$"
)
_MAIL_HOST = re.compile(
    rf"^(?:(?:smtp|smtps|mx|imap|imaps|pop|pop3|mta|dkim|dmarc)-{_HOST_ROLE}"
    r"|(?:mail|email|smtp|mx)-?(?:in|out|relay|gw|gateway|server|host|outbound|inbound|backup)"
    r"|backup-?(?:mx|mail|smtp)|(?:inbound|outbound)-?mail)$"
)
# The sign-in network's services by role, with or without the hyphen (`plc-directory`,
# `plcdirectory`: review 34); `relay`, an everyday word, only with it (`relayout` is free).
_PDS_LIKE = re.compile(rf"^(?:(?:pds|xrpc|bgs|appview|entryway|labeler|plc)-?|relay-){_HOST_ROLE}$")
# A platform service's name joined to a part of its front door (admin-panel, api-docs,
# apidocs, api-gateway, auth-portal, developer-docs; admin-console, wiki-admin, mcp-api,
# docs-api): pages that would pass for the platform's own admin and documentation (reviews
# 34 and 35: each was free). Everyday work stays
# free (app-console, web-dev: thirtieth review), and a wiki of the docs of something else
# keeps its own word first (`libfoo-docs`, `my-api-docs`).
_SERVICE_PART = re.compile(
    r"^(?:api|apis|admin|administrator|auth|oauth|sso|login|account|accounts|developer"
    r"|developers|mcp|platform|status|health|control|docs|wiki|www)"
    r"-?(?:docs|doc|documentation|reference|panel|gateway|gw|portal|explorer|playground|keys?"
    r"|tokens?|check|checks|manager|admin|center|centre|settings|status|console|dashboard"
    r"|login|server|api|robot)$"
)
_PLATFORM_NAMES = (
    r"(?:robot|robots|robotwtf|robot-wtf|otterwiki|otter-wiki|bluesky|bsky|atproto|pds)"
)
_OFFICES = (
    r"(?:admin|admins|administrator|team|support|staff|official|security|help|helpdesk|mod"
    r"|mods|moderator|moderators|ops|status|abuse|trust|safety|billing|account|accounts|login"
    r"|auth|verify|verified|system|service|services|noreply|no-reply|info|news|app|api|mail"
    r"|social|pds|relay|wiki|wikis|platform|moderation|operator|operators|appview|labeler"
    r"|ozone|plc|firehose|password|passwords|reset|recovery|confirm|verification|alert|alerts"
    r"|notification|notifications|notify|notice|notices|desk|customer|customers|care|contact"
    r"|report|reports|appeal|appeals|2fa|mfa|mcp|signin|signup|docs|secure|dev|com|net|org"
    r"|io|www|site|web|online|hq|inc|corp|network)"
)
_LOOKALIKE = re.compile(rf"^(?:{_PLATFORM_NAMES}-?{_OFFICES}|{_OFFICES}-?{_PLATFORM_NAMES})$")
# The same words joined as a platform's notices and desks name them, whatever the pair: a desk
# or team of an office (help-desk, customer-support, security-team, abuse-desk, trust-center),
# an account action (verify-email, reset-password, unlock-account) and the same the other way
# round (account-recovery, password-reset, login-alert). Listing them one by one left
# `helpdesk` free beside `help` (twenty-fifth review).
# The offices are those whose staff write to users about their accounts: support and help, IT
# and its operators (it-team, tech-support, noc, sysadmin), security, moderation, billing,
# legal and compliance; and a desk is reached by its team, staff, line, chat, portal, ticket or
# request (it-helpdesk, help-line, support-ticket). The pair the other way round names the same
# desk (team-support, team-it, staff-security, support-it) (twenty-sixth review: team-support
# and it-team were free). A team or a support wiki of anything else stays free: `team-wiki`,
# `team-up`, `design-team`, `libfoo-support`, `support-group`, as `steam` and `teamwork-notes`
# hold no such pair; `team`, `support` and `staff` alone are in the lists above.
_OFFICE = (
    r"(?:help|support|helpdesk|customer|customers|security|abuse|trust|safety|account|accounts"
    r"|billing|service|privacy|fraud|admin|admins|administrator|sysadmin|sysadmins|it|tech"
    r"|technical|noc|soc|staff|mod|mods|moderator|moderators|moderation|legal|compliance)"
)
_DESK = re.compile(
    rf"^{_OFFICE}-?(?:desk|helpdesk|team|teams|staff|center|centre|care|service|services"
    r"|support|alert|alerts|notice|notices|notification|notifications|department|dept|office"
    r"|line|hotline|chat|portal|ticket|tickets|request|requests)$"
    rf"|^(?:team|teams|staff|desk|helpdesk|support)-?{_OFFICE}$"
)
# Addresses spelled as a slug: four numbers 0-255 joined by '-' (169-254-169-254, a cloud
# metadata address; 10-0-0-1), alone or among other words, as wildcard DNS services (sslip.io,
# nip.io) read `name-10-0-0-1.{domain}` as 10.0.0.1 and people read it as that host; and an
# IPv6 address written out in eight groups (fd00-ec2-0-0-0-0-0-254, EC2's metadata service).
# A dotted form cannot be a slug (RFC 1123 labels hold no dots) (twenty-sixth review:
# 169-254-169-254 was free).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[0-9]?[0-9])"
_IP_ADDRESS = re.compile(
    rf"^(?:[a-z0-9-]*-)?{_OCTET}(?:-{_OCTET}){{3}}(?:-[a-z0-9-]*)?$"
    r"|^(?:[0-9a-f]{1,4}-){7}[0-9a-f]{1,4}$"
)
# DKIM selectors too short or too numbered to list by name (see _DKIM): Fastmail's fm1-fm3,
# iCloud's sig1, Yahoo's s1024 and s2048.
_DKIM_SELECTOR = re.compile(r"^(?:fm[1-9]|sig[1-9]|s1024|s2048)$")
# Mail services' numbered hosts: SendGrid's sender authentication (`em1234`) and link
# branding (`url1234`) records (review 34).
_MAIL_SERVICE_HOST = re.compile(r"^(?:em|url)\d+$")
_ACCOUNT_WORDS = r"(?:email|mail|account|accounts|password|passwords|login|signin|identity|handle)"
_ACCOUNT_ACTION = re.compile(
    r"^(?:(?:verify|verification|confirm|confirmation|reset|recover|recovery|unlock|activate"
    rf"|activation|validate|validation|update|secure|security)-?{_ACCOUNT_WORDS}"
    rf"|{_ACCOUNT_WORDS}-?(?:verify|verification|confirm|confirmation|reset|recover|recovery"
    r"|unlock|activation|validation|update|security|alert|alerts|help|support|notice|notices))$"
)
# A platform service's name after a word that says whose it is or where it faces (public-api,
# publicapi, internal-auth, official-mcp: review 41 found public-api free).
_QUALIFIED_SERVICE = re.compile(
    r"^(?:public|private|internal|external|global|official)-?(?:api|apis|auth|oauth|sso|login"
    r"|mcp|cdn|admin|console|gateway)$"
)
# A well-known file's name with its extension, as a slug spells `jwks.json` or `security.txt`
# (review 41: jwks-json was free).
_WELL_KNOWN_FILE = re.compile(
    r"^(?:jwks|jwk|security|robots|humans|ads|app-ads|sitemap|crossdomain|browserconfig"
    r"|manifest|assetlinks|apple-app-site-association|openid-configuration|host-meta|nodeinfo"
    r"|atproto-did|did|client-metadata|oauth-client-metadata|wpad|favicon|webfinger)"
    r"-?(?:json|txt|xml|dat|ico|jrd)$"
)
# Network edges by role or a host's number (vpn-gw, fw-internal, lb-primary, lb2, lb-101; a
# year is no host's number: lb-2024 stays free, review 43) and the web host of a stage
# (www-dev, www-staging) (review 42: vpn-gw and www-dev were free).
_EDGE_HOST = re.compile(
    r"^(?:vpn|fw|lb|firewall|loadbalancer|proxy)-?(?:gw|gateway|internal|external|primary"
    r"|secondary|edge|\d{1,3})$|^www-?(?:dev|test|testing|staging|stage|prod|beta|alpha|new|old"
    r"|next|preview|qa|uat)$"
)
PATTERN_REASONS = (
    (_NUMBERED, "it names a numbered service host"),
    (_MAIL_HOST, "it names a mail service host"),
    (_PDS_LIKE, "it would pass for the sign-in network's services"),
    (_LOOKALIKE, "it would pass for the platform"),
    (_DESK, "it would pass for the platform's help desk or notices"),
    (_IP_ADDRESS, "it spells a network address"),
    (_DKIM_SELECTOR, "it names a DKIM selector of a mail service"),
    (_MAIL_SERVICE_HOST, "it names a mail service host"),
    (_SERVICE_PART, "it names a service host"),
    (_QUALIFIED_SERVICE, "it names a service host"),
    (_EDGE_HOST, "it names a service host"),
    (_WELL_KNOWN_FILE, "clients look it up to discover a service (a well-known name)"),
    (_ACCOUNT_ACTION, "it would pass for the platform's account mail"),
)


# The platform's and its sign-in network's names as a look-alike would spell them: digits for
# the letters they resemble (r0bot, b1uesky), letters for letters (otterwlki, rn for m), a
# letter doubled (roboot), a hyphen anywhere, an article or "official" before it (the-robot,
# realrobot), and each of those joined to a word of office (r0bot-support): reviews 39 and 40
# found them free.
_PLATFORM_WORDS = ("robot", "robots", "robotwtf", "otterwiki", "bluesky", "bsky", "atproto")
_LOOKALIKE_LETTERS = (str.maketrans("013457", "oleast"), str.maketrans("013457", "oieast"))
_LOOKALIKE_SWAPS = ((), (("l", "i"),), (("i", "l"),), (("rn", "m"), ("vv", "w")))
_LOOKALIKE_PREFIXES = ("", "the", "my", "real", "official", "true", "genuine")


def _squeezed(word: str) -> str:
    """`word` with each run of one letter made one letter (roboot: robot)."""
    return "".join(letter for at, letter in enumerate(word) if word[at - 1 : at] != letter)


_SQUEEZED_PLATFORM = frozenset(_squeezed(word) for word in _PLATFORM_WORDS)


def _lookalike_readings(slug: str) -> set[str]:
    """`slug` without hyphens, read as each look-alike spelling it could be (see above)."""
    readings = set()
    for letters in _LOOKALIKE_LETTERS:
        for swaps in _LOOKALIKE_SWAPS:
            word = slug.replace("-", "").translate(letters)
            for old, new in swaps:
                word = word.replace(old, new)
            readings.add(word)
    return readings


def _passes_for_platform(slug: str) -> bool:
    """True when `slug`, read as a look-alike, is the platform's name (with an article or
    "official" before it), or that name joined to a word of office (_LOOKALIKE)."""
    for reading in _lookalike_readings(slug):
        for word in (reading, _squeezed(reading)):
            for prefix in _LOOKALIKE_PREFIXES:
                rest = word[len(prefix) :] if word.startswith(prefix) else ""
                if _squeezed(rest) in _SQUEEZED_PLATFORM or _LOOKALIKE.fullmatch(rest):
                    return True
    return False


def reserved_reason(slug: str) -> str | None:
    """Return why `slug` is reserved, or None.

    Args:
        slug: a slug already of the valid shape (SLUG_PATTERN).

    Returns:
        The reason of the first group naming it, or of the first reserved shape matching it;
        None when it is free.

    Every listed name is reserved as written. A host name (service, mail, discovery and
    platform groups) and the reserved shapes are also reserved without hyphens (`sign-in`),
    without a number or version at the end (`postmaster2`, `dev-2`, `api-v2`,
    `robot-admin1`), and without a region after a regional service (`auth-eu`, `api-eu-2`).
    The platform's names are reserved in look-alike spellings too (`r0bot`, `the-robot`).
    Well-known names and literal values are reserved only whole (`calendar`, `true`), as
    clients and programs read them only whole (RFC 8615 names; JSON, YAML 1.1 values).
    """
    if slug in RESERVED_REASONS:
        return RESERVED_REASONS[slug]
    for spelling in _spellings(slug):
        if spelling in _RESERVED_COMPACT:
            return _RESERVED_COMPACT[spelling]
        for pattern, reason in PATTERN_REASONS:
            if pattern.fullmatch(spelling):
                return reason
    if _passes_for_platform(slug):
        return RESERVED_REASONS["robot"]
    return None


def _spellings(slug: str) -> list[str]:
    """`slug` and the spellings reserved_reason also checks against host names and shapes,
    in that order: without a number, then without a version at its end, then each of those
    without a region after a regional service's name, and each of them without hyphens."""
    bases = [slug]
    for suffix in _HOST_SUFFIXES:
        bare = suffix.sub("", slug)
        if bare and bare not in bases:
            bases.append(bare)
    for base in list(bases):
        regional = _REGION_SUFFIX.sub("", base)
        if regional != base and regional in _REGIONAL and regional not in bases:
            bases.append(regional)
    return bases + [base.replace("-", "") for base in bases if "-" in base]


def slug_problem(slug: str) -> str | None:
    """Return why `slug` cannot name a wiki, or None when it can."""
    if not isinstance(slug, str) or not slug:
        return "slug is required"
    if not SLUG_PATTERN.fullmatch(slug):  # match() would let "abc\n" through ($)
        return (
            f"invalid slug {slug!r}: use 3-30 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    if "--" in slug:
        return f"invalid slug {slug!r}: no double hyphens"
    reason = reserved_reason(slug)
    if reason:
        return f"slug {slug!r} is reserved: {reason}; choose another name"
    return None


def validate_slug(slug: str) -> str:
    """Return `slug` if it can name a wiki, else raise BadRequest saying why."""
    problem = slug_problem(slug)
    if problem:
        raise BadRequest(problem)
    return slug


def slug_from_host(host: str | None, domain: str) -> str | None:
    """Return the valid slug that `host` ({slug}.{domain}, any port) names, else None."""
    if not host or len(host) > 300:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None  # IPv6 literal
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    suffix = "." + domain
    if not name.endswith(suffix):
        return None
    slug = name[: -len(suffix)]
    if slug_problem(slug):
        return None
    return slug
