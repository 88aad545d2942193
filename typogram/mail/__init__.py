"""Transactional e-mail: the mail port and its adapters, templates, the outbox
producers call, the history, tokens, preferences and delivery tracking.

Reading order: ``port`` (the transport interface and its two refusals),
``maildir`` and ``smtp`` (the adapters), ``catalog`` (every message type),
``render`` (templates to a MIME message), ``i18n`` (the languages mail is written
in), ``outbox`` (what producers call),
``history``, ``links`` (verification, reset and unsubscribe tokens),
``preferences``, ``tracking`` (provider delivery events), ``services``.
"""
