"""Parse untrusted XML safely: no entity expansion, no DTD, no network, no huge trees.

Used for feeds and OPML files. Documents that declare their own entities are
refused wherever the declaration sits (the check reads the parsed document's
internal DTD, so no comment or whitespace before a DOCTYPE can hide it), and
lxml is told never to expand entities, load a DTD or touch the network anyway.
"""

from __future__ import annotations

import re
from html.entities import name2codepoint

from lxml import etree

# Everything before the root element: XML declarations, comments, PIs, a DOCTYPE.
_PROLOG_DECL = re.compile(rb"(<!--.*?-->)|<\?xml.*?\?>", re.DOTALL)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_BARE_AMP = re.compile(r"&(?!#?[A-Za-z0-9]{1,32};)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# HTML void elements written unescaped and unclosed (<br>) would swallow what follows.
_UNCLOSED_VOID = re.compile(r"<(br|hr|img)(\s[^<>]*?)?\s*(?<!/)>", re.IGNORECASE)
# An attribute value without quotes (<rss version=2.0>) makes libxml2 drop the element.
_UNQUOTED_ATTR = re.compile(r"(<[A-Za-z][^<>]*?\s[A-Za-z_][\w:.-]*=)([^\s\"'<>=]+)")


class XMLError(ValueError):
    """Unsafe (declares entities) or unreadable even after repairs; the message says which."""


def xml_root(data: bytes) -> etree._Element:
    """Parse UTF-8 XML: strictly, else after repairing what feed readers forgive.

    Raises XMLError for documents that declare entities and for documents
    nothing readable can be made of.
    """
    data = _clean_prolog(data)
    try:
        return _refuse_entities(etree.fromstring(data, _parser(recover=False)))
    except etree.XMLSyntaxError as exc:
        first_error = exc
    text = data.decode("utf-8", errors="replace")
    text = _CONTROL.sub("", text)
    text = _NAMED_ENTITY.sub(_entity_to_ref, text)
    text = _BARE_AMP.sub("&amp;", text)
    text = _UNCLOSED_VOID.sub(r"<\1\2/>", text)
    text = _UNQUOTED_ATTR.sub(r'\1"\2"', text)
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser(recover=True))
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise XMLError(f"not readable XML: {first_error}")
    return _refuse_entities(root)


def local_name(tag: str) -> str:
    """`{ns}item`, `rss:item` (an undeclared prefix kept by recovery) and `item` are all `item`."""
    if tag[:1] == "{":
        return tag.partition("}")[2]
    return tag.rpartition(":")[2]


def _clean_prolog(data: bytes) -> bytes:
    """Drop XML declarations before the root: the parser is told the bytes are UTF-8.

    Feeds often put a newline or a comment before `<?xml ...?>`, or repeat it,
    which strict parsing refuses; the declaration says nothing we still need.
    """
    data = data.lstrip(b" \t\r\n")
    first = _FIRST_ELEMENT.search(data)
    end = first.start() if first else len(data)
    prolog = data[:end]
    if b"<?xml" not in prolog:
        return data
    kept = _PROLOG_DECL.sub(lambda m: m.group(1) or b"", prolog)
    return kept.lstrip(b" \t\r\n") + data[end:]


def _refuse_entities(root: etree._Element) -> etree._Element:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and next(iter(dtd.iterentities()), None) is not None:
        raise XMLError(
            "refused: the document declares its own XML entities "
            "(a possible entity-expansion or external-entity attack)"
        )
    return root


def _parser(*, recover: bool) -> etree.XMLParser:
    # A fresh parser per document: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        encoding="utf-8",
        recover=recover,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _entity_to_ref(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _XML_ENTITIES:
        return match.group(0)
    code = name2codepoint.get(name)
    return f"&#{code};" if code else f"&amp;{name};"
