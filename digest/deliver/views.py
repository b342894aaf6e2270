"""Each distinct rendering of an edition, rendered and built into a message template once.

Two subscribers with the same preferences (see `view_key`) read the same digest
but for their name, address and signed links, which the template fills per
message: a list of a million with a handful of preference sets renders a
handful of times.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from digest.config import Settings
from digest.deliver.message import Composer, MessageTemplate, standin
from digest.models import Edition, Subscriber
from digest.personalise import personal_edition, view_options
from digest.render import Renderer

log = logging.getLogger(__name__)

VIEW_CACHE_SIZE = 256  # distinct renderings kept built at once
# Marks a view whose templates transform per-subscriber values: rendered per message.
PER_SUBSCRIBER = MessageTemplate(())


def view_key(subscriber: Subscriber) -> tuple:
    """What makes two subscribers' digests differ beyond name, address and links."""
    return (
        bool(subscriber.name),  # a template may say "Hello {{ name }}" or "Hello there"
        subscriber.format,
        subscriber.timezone,
        tuple(sorted(subscriber.topics_include)),
        tuple(sorted(subscriber.topics_exclude)),
    )


class Views:
    """The render-and-compose cache of one send run.

    The view step renders the edition for a stand-in with the subscriber's
    preferences; the template then takes each subscriber's own name, address
    and signed links. Kept to the most recent few, so memory stays flat.
    """

    def __init__(self, edition: Edition, settings: Settings, composer: Composer) -> None:
        self.edition = edition
        self.renderer = Renderer(settings)
        self.composer = composer
        self.options = view_options(settings)
        self._cache: OrderedDict[tuple, MessageTemplate | None] = OrderedDict()
        self._quiet: set[tuple] = set()

    def template(self, subscriber: Subscriber) -> MessageTemplate | None:
        """The subscriber's message template, or None when they get nothing today."""
        key = view_key(subscriber)
        if key not in self._cache:
            template = self._cache[key] = self._build(subscriber)
            if len(self._cache) > VIEW_CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
            template = self._cache[key]
        return template

    def quiet(self, subscriber: Subscriber) -> bool:
        """True when the subscriber's view is the quiet-day note."""
        return view_key(subscriber) in self._quiet

    def message(self, subscriber: Subscriber, message_id: str) -> bytes:
        template = self.template(subscriber)
        assert template is not None, "skipped subscribers are not sent a message"
        if template is PER_SUBSCRIBER:
            view = personal_edition(self.edition, subscriber, **self.options)
            assert view is not None
            template = self.composer.template(self.renderer.render(view, subscriber))
        return self.composer.message(template, subscriber, message_id)

    def _build(self, subscriber: Subscriber) -> MessageTemplate | None:
        stand_in = standin(subscriber)
        view = personal_edition(self.edition, stand_in, **self.options)
        if view is None:
            return None
        if not view.themes:
            self._quiet.add(view_key(subscriber))
        rendered = self.renderer.render(view, stand_in)
        if self.composer.has_leftovers(rendered):
            log.warning(
                "the templates change the subscriber's name, address or links (not only show "
                "them), so each message is rendered on its own: slower, but correct"
            )
            return PER_SUBSCRIBER
        return self.composer.template(rendered)
