"""The account flows that e-mail carries: verification, the "address taken" notice,
password reset.

Rules:

1. Registering sends a verification link to the address, and a welcome. When
   another account holds the address (``addresses`` rule 2) its holder gets
   "someone tried to register with your address" instead, with a link to
   reset their password: the registration's answer is the same either way.
2. A resend goes to the address the user wants (``AddressState.wanted``),
   under the sending limits (``Outbox.allow``); an address held by someone
   else gets the notice again, never a link.
3. A reset request names an address; the worker (not the request) looks it
   up, so the answer and its timing are the same for every address. Only
   a registered address under its limits gets a single-use link, valid
   ``reset_ttl_s``.
4. Confirming spends the reset token (``tokens`` rule 2) and sets the password;
   the caller then signs the user out everywhere and sends "password changed".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum

from typogram.accounts import Accounts, User
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.mail.addresses import EmailAddresses
from typogram.mail.links import reset_url, verify_url
from typogram.mail.outbox import Outbox, SendingLimited
from typogram.mail.tokens import EmailTokens, Purpose
from typogram.mail.unclaimed import unclaimed


class Verification(StrEnum):
    SENT = "sent"
    ALREADY_VERIFIED = "already_verified"


async def create_account(
    accounts: Accounts, username: str, email: str, password_hash: str, *, language: str = "en"
) -> tuple[User, bool]:
    """A new user, and whether another account holds ``email`` (then the user gets an
    unclaimed address: ``typogram.mail.addresses`` rule 2), whose mail is written in
    ``language``. A taken username is refused
    (409 naming only the username); a taken address never is."""
    try:
        return await accounts.create_user(username, email, password_hash, language=language), False
    except AppError as exc:
        fields = exc.fields or {}
        if exc.code is not ErrorCode.CONFLICT or "email" not in fields:
            raise
        if "username" in fields:
            raise AppError(
                ErrorCode.CONFLICT, exc.message, fields={"username": fields["username"]}
            ) from None
    address = unclaimed(email.lower())
    return await accounts.create_user(username, address, password_hash, language=language), True


@dataclass(frozen=True, slots=True)
class AccountMail:
    outbox: Outbox
    tokens: EmailTokens
    addresses: EmailAddresses
    accounts: Accounts
    site_url: str
    verify_ttl_s: int
    reset_ttl_s: int

    async def _name(self, user_id: str) -> str:
        user = await self.accounts.get(user_id)
        return user.display_name if user else ""

    async def registered(self, user_id: str, address: str, *, taken: bool) -> None:
        """Rule 1 (``taken``: the account was made with an unclaimed address)."""
        if taken:
            await self.addresses.set_pending(user_id, address)
        with contextlib.suppress(SendingLimited):  # the answer must not change
            await self.send_verification(user_id)
        if not taken:
            await self.outbox.enqueue(
                "welcome", user_id=user_id, to=address, name=await self._name(user_id)
            )

    async def send_verification(self, user_id: str) -> Verification:
        """Rule 2; raises ``SendingLimited`` over a limit."""
        state = await self.addresses.state(user_id)
        if state is None or state.verified:
            return Verification.ALREADY_VERIFIED
        address = state.wanted
        holder = await self.addresses.owner(address)
        if holder is not None and holder != user_id:
            await self.outbox.allow(holder, address)
            await self.outbox.enqueue(
                "email_taken",
                user_id=holder,
                to=address,
                name=await self._name(holder),
                params={"link": reset_url(self.site_url)},
            )
            return Verification.SENT
        await self.outbox.allow(user_id, address)
        token = await self.tokens.issue(user_id, Purpose.VERIFY, address, self.verify_ttl_s)
        await self.outbox.enqueue(
            "verify_email",
            user_id=user_id,
            to=address,
            name=await self._name(user_id),
            params={"link": verify_url(self.site_url, token)},
        )
        return Verification.SENT

    async def verify(self, token: str) -> str:
        """Spend a verification token and verify its address; the user id."""
        spent = await self.tokens.spend(token, Purpose.VERIFY)
        await self.addresses.verify(spent.user_id, spent.email)
        return spent.user_id

    async def request_reset(self, address: str) -> str | None:
        """Rule 3 (in the worker); the message id, or ``None`` when nothing was sent."""
        holder = await self.addresses.owner(address)
        if holder is None:
            return None
        try:
            await self.outbox.allow(holder, address)
        except SendingLimited:
            return None
        token = await self.tokens.issue(holder, Purpose.RESET, address, self.reset_ttl_s)
        return await self.outbox.enqueue(
            "password_reset",
            user_id=holder,
            to=address,
            name=await self._name(holder),
            params={"link": reset_url(self.site_url, token), "minutes": self.reset_ttl_s // 60},
        )

    async def notify(
        self,
        kind: str,
        user_id: str,
        params: dict[str, object],
        *,
        message_id: str | None = None,
        created_at: int | None = None,
    ) -> str | None:
        """A notice to the user's current address (none to an unclaimed one). With
        ``message_id`` and ``created_at`` it is made at most once (``outbox`` rule 3)."""
        state = await self.addresses.state(user_id)
        if state is None or state.deliverable is None:
            return None
        return await self.outbox.enqueue(
            kind,
            user_id=user_id,
            to=state.deliverable,
            name=await self._name(user_id),
            params=params,
            message_id=message_id,
            created_at=created_at,
        )

    async def confirm_reset(self, token: str, password_hash: str) -> str:
        """Rule 4: the user id whose password is now ``password_hash``."""
        spent = await self.tokens.spend(token, Purpose.RESET)
        await self.accounts.set_password(spent.user_id, password_hash)
        return spent.user_id
