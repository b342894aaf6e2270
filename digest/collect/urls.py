"""Links without tracking, and canonical URLs so one article is recognised across feeds and runs.

The tracking parameters are listed here and nowhere else: the collector gives
every article the link from `clean_url` and the identity from `canonical_url`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

# Parameters that say who sent the reader, never which page to show. Lower case;
# matched case-insensitively ("CMP", "WT.mc_id" and "ICID" are written in capitals).
TRACKING_PREFIXES = (
    "utm_",  # Google Analytics campaigns
    "mc_",  # Mailchimp: mc_cid, mc_eid
    "pk_",  # Piwik
    "mtm_",  # Matomo
    "hsa_",  # HubSpot ads
    "_hs",  # HubSpot e-mail: _hsenc, _hsmi
    "vero_",  # Vero
    "at_",  # AT Internet / Piano (BBC): at_medium, at_campaign, at_link_id...
    "ns_",  # comScore (older BBC links): ns_mchannel, ns_source, ns_campaign
    "itm_",  # internal campaigns: itm_source, itm_medium
    "oly_",  # Omeda: oly_anon_id, oly_enc_id
    "wt.",  # Webtrends: WT.mc_id
    "ga_",  # ga_source, ga_campaign
)
TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "li_fat_id",
        "srsltid",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "cmpid",
        "cmp",
        "ocid",
        "icid",
        "ncid",
        "traffic_source",
        "s_cid",
        "s_kwcid",
        "sc_cid",
        "smid",
        "smtyp",
        "sr_share",
        "soc_src",
        "soc_trk",
        "xtor",
        "trk",
        "tpcc",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "_ga",
        "_gl",
        "_openstat",
        "rb_clickid",
        "irclickid",
        "__twitter_impression",
    }
)


def is_tracking(name: str) -> bool:
    """True for a query parameter that only tracks the reader (see the lists above)."""
    name = name.strip().lower()
    while name.startswith("amp;"):  # a link escaped twice: "?a=1&amp;utm_source=x"
        name = name[4:]
    return name in TRACKING_NAMES or name.startswith(TRACKING_PREFIXES)


def clean_url(url: str) -> str:
    """The link as published, minus tracking parameters (in the query or the fragment).

    Everything else is kept byte for byte (order, encoding, case), so the link
    still opens the same page; use `canonical_url` to compare links.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    query = _drop_tracking(parts.query)
    fragment = parts.fragment
    # "#xtor=RSS-3", "#at_medium=...": a fragment made only of tracking pairs goes too.
    if "=" in fragment and not _drop_tracking(fragment):
        fragment = ""
    if query == parts.query and fragment == parts.fragment:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment))


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, drop fragment, default port and tracking parameters."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking(k)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))


def _drop_tracking(query: str) -> str:
    if not query:
        return query
    kept = [
        pair
        for pair in query.split("&")
        if pair and not is_tracking(unquote_plus(pair.partition("=")[0]))
    ]
    return "&".join(kept)
