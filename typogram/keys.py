"""Every cache key and pub/sub channel name, in one place.

Adapters add the deployment's prefix (``redis_prefix``); callers use these
functions and never spell a key themselves.
"""

from __future__ import annotations


def user_profile(user_id: str) -> str:
    return f"user:{user_id}:profile"


def user_presence(user_id: str) -> str:
    return f"user:{user_id}:presence"


def user_appear_offline(user_id: str) -> str:
    """Set (no TTL) while the user chose to appear offline to everyone (``presence.query``)."""
    return f"user:{user_id}:appear_offline"


def user_tokens(user_id: str) -> str:
    """Sorted set: the token version (member ``v``) and revoked login sessions, each
    scored by when it may be forgotten (``typogram.revocation``)."""
    return f"user:{user_id}:tokens"


def rate_limit(scope: str, subject: str, window: int) -> str:
    """A fixed-window counter: ``scope`` is ``user``, ``ip`` or ``login``."""
    return f"ratelimit:{scope}:{subject}:{window}"


def login_backoff(pair: str) -> str:
    """Present while an (account, IP) pair waits out its back-off (``typogram.login_throttle``)."""
    return f"login:backoff:{pair}"


def login_streak(pair: str) -> str:
    """Failed logins in a row of an (account, IP) pair."""
    return f"login:streak:{pair}"


def login_known(account: str, ip: str) -> str:
    """Marks an IP that logged into ``account`` lately (exempt from the account-wide limit)."""
    return f"login:known:{account}|{ip}"


def event_done(group: str, event_id: str) -> str:
    """Marks an event a consumer group has processed (idempotency)."""
    return f"event:{group}:{event_id}:done"


def room_state(room_id: str) -> str:
    return f"room:{room_id}:state"


def room_history(room_id: str) -> str:
    return f"room:{room_id}:history"


def room_pushes(room_id: str) -> str:
    """The room's recent pushes, each ``b"<n> " + payload`` (fills resume gaps)."""
    return f"room:{room_id}:pushes"


def room_push_seq(room_id: str) -> str:
    """Counts the room's pushes: n in ``room_pushes``."""
    return f"room:{room_id}:pushseq"


def room_members(room_id: str) -> str:
    """Sorted set of nodes with members in the room, scored by lease expiry (epoch s)."""
    return f"room:{room_id}:members"


def room_node_members(room_id: str, node_id: str) -> str:
    """One node's members of the room and their connection counts (JSON, TTL)."""
    return f"room:{room_id}:node:{node_id}"


def room_sent(room_id: str, sender: str) -> str:
    """When a sender (a user id, or ``source:<address>`` for guests) last sent in the
    room under slow mode (epoch s, TTL one interval)."""
    return f"room:{room_id}:sent:{sender}"


def room_moderation(room_id: str) -> str:
    """Owner, appointed moderators, mutes and slow mode of a room (JSON, TTL)."""
    return f"room:{room_id}:moderation"


def session_state(session_id: str) -> str:
    """A resumable session: user, rooms, last seq, room cursors, owner node (JSON, TTL)."""
    return f"session:{session_id}:state"


def session_owner(session_id: str) -> str:
    """The node that may write a session's record: its fencing lease (node id, TTL)."""
    return f"session:{session_id}:owner"


def session_mark(session_id: str) -> str:
    """What a session's numbered frames changed since its record (``SessionMark``, TTL)."""
    return f"session:{session_id}:mark"


def session_replay(session_id: str) -> str:
    """A session's recent frames, each ``b"<seq> " + frame`` (TTL like ``session_state``)."""
    return f"session:{session_id}:replay"


def gateway_node(node_id: str) -> str:
    """A live gateway node's lease, refreshed while it runs."""
    return f"gateway:node:{node_id}"


def race_state(race_id: str) -> str:
    return f"race:{race_id}:state"


def race_matchmaking(difficulty: str) -> str:
    return f"race:matchmaking:{difficulty}"


def race_queue(difficulty: str, lang: str) -> str:
    """One matchmaking queue (sorted set of ticket ids by enqueue time), per language."""
    return f"{race_matchmaking(difficulty)}:{lang}"


def race_queue_tickets() -> str:
    """Hash of every queued ticket id -> its JSON (user, rating, node, queue)."""
    return "race:matchmaking:tickets"


def race_queues() -> str:
    """Set of the queue keys that may hold tickets (the matchers' work list)."""
    return "race:matchmaking:queues"


def race_player(user_id: str) -> str:
    """Where a player is: ``q:<ticket>`` (queued) or ``r:<race>`` (racing); one at a time."""
    return f"race:player:{user_id}"


def race_ticket(ticket_id: str) -> str:
    """A matched ticket -> its player and race (JSON), for the take's TTL: what a late
    ``match.cancel`` answers (``typogram.match_queues`` rule 3a)."""
    return f"race:ticket:{ticket_id}"


def race_owner(race_id: str) -> str:
    """The owning node's lease on a race (node id, short TTL, renewed while it ticks)."""
    return f"race:{race_id}:owner"


def race_code(code: str) -> str:
    """A private race's join code -> its race id."""
    return f"race:code:{code}"


def race_writer(race_id: str) -> str:
    """The node that last wrote ``race:{id}:state`` (its lease's witness, same TTL as the
    state): a lapsed lease comes back only to it (``typogram.fencing``)."""
    return f"race:{race_id}:writer"


def races_active() -> str:
    """Sorted set of unfinished races scored by their owner lease's expiry (epoch s)."""
    return "race:active"


def user_rating(user_id: str) -> str:
    """A user's race rating for the matchmaker (JSON: mu, sigma, races)."""
    return f"user:{user_id}:rating"


def rating_histogram() -> str:
    """Rated players per bucket of display rating (JSON), for ranks (``typogram.ratings``)."""
    return "ratings:histogram"


def tournament_state(tournament_id: str) -> str:
    return f"tournament:{tournament_id}:state"


def tournament_rankings(tournament_id: str) -> str:
    return f"tournament:{tournament_id}:rankings"


def leaderboard(category: str, timeframe: str) -> str:
    return f"leaderboard:{category}:{timeframe}"


# -- pub/sub channels -------------------------------------------------------


def channel_room(room_id: str) -> str:
    return f"ch:room:{room_id}"


def channel_user(user_id: str) -> str:
    """Messages for every connection of one user (token revocation, unlocks)."""
    return f"ch:user:{user_id}"


def channel_race(race_id: str) -> str:
    return f"ch:race:{race_id}"


def channel_race_node(node_id: str) -> str:
    """A gateway node's race inbox: forwarded race events, their answers, matches found."""
    return f"ch:race-node:{node_id}"


def channel_race_nodes() -> str:
    """Every gateway node's race notices (a node announcing the races it adopted)."""
    return channel_race_node("*")  # no node id is "*": ids are hex


def channel_tournament(tournament_id: str) -> str:
    return f"ch:tournament:{tournament_id}"


# -- typing tests and results -------------------------------------------------


def typing_test(test_id: str) -> str:
    """A generated test's spec, seed and text, kept while it may be submitted."""
    return f"test:{test_id}"


def idempotency(scope: str, user_id: str, key: str) -> str:
    """A client's ``Idempotency-Key``, scoped per endpoint and per user."""
    return f"idem:{scope}:{user_id}:{key}"


def user_recent_results(user_id: str) -> str:
    """The newest results of one user, newest first (cache-aside list)."""
    return f"user:{user_id}:results:recent"


def user_accepted_results(user_id: str) -> str:
    """The user's newest accepted results, oldest first, one JSON each (list): covers
    the ones the results worker may not have written yet (read-your-writes)."""
    return f"user:{user_id}:results:accepted"


def user_bests(user_id: str) -> str:
    """Sorted set: the user's best WPM per category (decides ``personal_best``)."""
    return f"user:{user_id}:bests"


def user_history_count(user_id: str) -> str:
    """Counter: the user's accepted (unflagged) results lately. The anti-cheat history
    rule weighs a result against the user's best only once this many stand behind it."""
    return f"user:{user_id}:history:n"


def user_rhythm(user_id: str) -> str:
    """The user's rhythm profile (``typogram.rhythm``), folded from their accepted
    results: what the anti-cheat compares a new result with."""
    return f"user:{user_id}:rhythm"


def test_submitted(test_id: str) -> str:
    """Set by a test's first submission, which claims it: a test is submitted once."""
    return f"test:{test_id}:submitted"


# -- leaderboards, insights, challenges, achievements (issue 4) ---------------


def leaderboard_view(category: str, timeframe: str) -> str:
    """The cached top-1000 view of one board (JSON: version, built_at, entries)."""
    return f"leaderboard:{category}:{timeframe}:top"


def leaderboard_version(category: str, timeframe: str) -> str:
    """Counts changes to a board; a view built from an older count is stale."""
    return f"leaderboard:{category}:{timeframe}:ver"


def insights(user_id: str) -> str:
    """A user's typing insights (keys, weak keys and bigrams, trend) as JSON."""
    return f"user:{user_id}:insights"


def insights_version(user_id: str) -> str:
    """Changes (a fresh token) whenever a user's analytics change; cached insights built
    under another token are stale."""
    return f"user:{user_id}:insights:ver"


def challenge_today(date: str) -> str:
    """The daily challenge of one UTC date (``2026-11-26``) as JSON."""
    return f"challenge:{date}"


def challenge_attempts(user_id: str, date: str) -> str:
    """Counts a user's attempts at one day's challenge (the daily cap; TTL two days)."""
    return f"challenge:{date}:attempts:{user_id}"


def achievements_unlocked(user_id: str) -> str:
    """A user's unlocked achievements (JSON list)."""
    return f"user:{user_id}:achievements"


def achievements_progress(user_id: str) -> str:
    """A user's progress towards locked achievements (JSON list)."""
    return f"user:{user_id}:achievements:progress"


# -- courses and subscriptions (issue 16) --------------------------------------


def course_catalog_version() -> str:
    """A fresh token whenever any course or lesson changes: cached catalog pages and
    courses stamped with another token are stale (``typogram.cache_aside``)."""
    return "course:catalog:version"


def course_catalog_page(digest: str) -> str:
    """One cached catalog page (filters, query, cursor and size hashed into ``digest``)."""
    return f"course:catalog:page:{digest}"


def course_catalog_course(slug: str) -> str:
    """One published course with its lessons, as the public sees it (no progress)."""
    return f"course:catalog:course:{slug}"


def user_subscription(user_id: str) -> str:
    """The user's subscription as last read (JSON; ``null`` for none), 15 minutes."""
    return f"user:{user_id}:subscription"


def user_subscription_version(user_id: str) -> str:
    """A fresh token on every change of the user's subscription (``typogram.cache_aside``)."""
    return f"user:{user_id}:subscription:ver"


# -- records: ratings, stats, race history (issue 13) ----------------------------


def user_stats(user_id: str) -> str:
    """A user's public stats (JSON, stamped with ``user_records_version``)."""
    return f"user:{user_id}:stats"


def user_races(user_id: str) -> str:
    """The newest page of a user's race history (JSON, stamped like ``user_stats``)."""
    return f"user:{user_id}:races"


def user_records_version(user_id: str) -> str:
    """Changes (a fresh token) whenever a worker stores a result, race or challenge streak
    of the user; cached stats and race pages built under another token are stale."""
    return f"user:{user_id}:records:ver"


# -- payments and coupons (issue 17) -------------------------------------------


def coupon(code: str) -> str:
    """An active coupon by its (upper-case) code, with its redemption count (JSON;
    ``null`` for no such active coupon), 1 hour; stale on any change or redemption."""
    return f"coupon:{code}"


def coupon_version(code: str) -> str:
    """A fresh token on every change or redemption of the coupon (``typogram.cache_aside``)."""
    return f"coupon:{code}:ver"


def user_recent_payments(user_id: str) -> str:
    """The first page of the user's payments, newest first (JSON), 15 minutes."""
    return f"user:{user_id}:payments:recent"


def user_payments_version(user_id: str) -> str:
    """A fresh token on every change of one of the user's payments."""
    return f"user:{user_id}:payments:ver"


# -- the blog (issue 19) -----------------------------------------------------------


def blog_version() -> str:
    """A fresh token whenever any post changes: every cached blog entry (pages, posts,
    searches, the feed and the sitemap) stamped with another token is stale."""
    return "blog:version"


def blog_page(digest: str) -> str:
    """One page of the public post list (tag, cursor and size hashed into ``digest``)."""
    return f"blog:page:{digest}"


def blog_post(slug: str) -> str:
    """What ``/blog/{slug}`` answers: the public post, a redirect to its new slug, or
    nothing (JSON)."""
    return f"blog:post:{slug}"


def blog_search(digest: str) -> str:
    """One page of a blog search (the query's terms, cursor and size in ``digest``)."""
    return f"blog:search:{digest}"


def blog_feed() -> str:
    """The newest public posts with their bodies, for the Atom feed."""
    return "blog:feed"


def blog_sitemap() -> str:
    """Every public post's slug and update time, for ``/sitemap.xml``."""
    return "blog:sitemap"


# -- e-mail (typogram/mail) -------------------------------------------------


def email_sending(message_id: str) -> str:
    """Held while one worker sends a message: a redelivery meanwhile waits, never sends."""
    return f"email:{message_id}:sending"


def email_allowance(scope: str, subject: str, window: int) -> str:
    """Messages sent in one hour (``window``) per ``user`` (an id) or ``address`` (a hash)."""
    return f"email:limit:{scope}:{subject}:{window}"
