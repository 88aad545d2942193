"""Verification and password reset end to end in Chromium: the links come from the
Maildir ``typogram serve`` writes its mail to, as a person would click them."""

from __future__ import annotations

import asyncio
import mailbox
import re
import uuid
from email.message import EmailMessage

import pytest

from tests.browser.conftest import Pages, Server, shoot, sign_up

pytestmark = pytest.mark.browser


async def mail_for(server: Server, address: str, subject: str, within_s: float = 20) -> str:
    """The text of the newest message to ``address`` with ``subject`` in the server's Maildir."""
    box = server.log.parent / "mail"
    async with asyncio.timeout(within_s):
        while True:
            if box.is_dir():
                found = [
                    m
                    for m in mailbox.Maildir(box, factory=None, create=False)
                    if address in str(m["To"]) and str(m["Subject"]) == subject
                ]
                if found:
                    message = found[-1]
                    assert isinstance(message, EmailMessage) or message is not None
                    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
                    payload = part.get_payload(decode=True)
                    assert isinstance(payload, bytes)
                    return payload.decode()
            await asyncio.sleep(0.2)


def link_in(text: str) -> str:
    match = re.search(r"http://\S+#/\S+token=\S+", text)
    assert match, text
    return match.group(0)


async def test_verify_the_address_and_choose_what_mail_comes(pages: Pages, server: Server) -> None:
    name = f"v_{uuid.uuid4().hex[:8]}"
    page = await pages.open()
    await sign_up(page, name)
    await page.wait_for_selector("#verify-banner")
    await page.click("#verify-resend")
    await page.wait_for_selector("#verify-banner :text('A new link is on its way')")
    await shoot(page, "email-verify-banner")
    link = link_in(await mail_for(server, f"{name}@example.com", "Confirm your e-mail address"))
    await page.goto(link)
    await page.wait_for_selector(f"#verify-done:has-text('{name}@example.com is verified')")
    await page.goto("/#/profile")
    await page.wait_for_selector("#profile-name")
    assert await page.locator("#verify-banner").count() == 0
    await page.wait_for_selector("#email-preferences input[name=achievements]")
    assert not await page.is_checked("#email-preferences input[name=achievements]")
    await page.check("#email-preferences input[name=achievements]")
    await page.uncheck("#email-preferences input[name=announcements]")
    await page.click("#email-preferences button[type=submit]")
    await page.wait_for_selector(":text('E-mail preferences saved')")
    await page.reload()
    await page.wait_for_selector("#email-preferences input[name=achievements]")
    assert await page.is_checked("#email-preferences input[name=achievements]")
    assert not await page.is_checked("#email-preferences input[name=announcements]")
    await shoot(page, "email-preferences")
    # A used link says so.
    await page.goto(link)
    await page.wait_for_selector("#verify-invalid:has-text('The link is used')")


async def test_forgot_and_reset_the_password(pages: Pages, server: Server) -> None:
    name = f"r_{uuid.uuid4().hex[:8]}"
    await sign_up(await pages.open(), name)
    page = await pages.open()  # another browser, signed out
    await page.goto("/#/signin")
    await page.click("#forgot-link")
    await page.fill("#forgot-password input[name=email]", f"{name}@example.com")
    await page.click("#forgot-password button[type=submit]")
    await page.wait_for_selector("#forgot-done")
    await shoot(page, "email-forgot-password")
    link = link_in(await mail_for(server, f"{name}@example.com", "Reset your Typogram password"))
    await page.goto(link)
    await page.fill("#reset-password input[name=password]", "short")
    await page.evaluate(
        "() => document.querySelector('#reset-password input').removeAttribute('minlength')"
    )
    await page.click("#reset-password button[type=submit]")
    await page.wait_for_selector("#reset-password .field-error")  # the rules still apply
    await page.fill("#reset-password input[name=password]", "a brand new secret")
    await page.click("#reset-password button[type=submit]")
    await page.wait_for_selector("#reset-done")
    await mail_for(server, f"{name}@example.com", "Your Typogram password was changed")
    await page.click("#reset-password a.button")
    await page.fill("#signin-form input[name=login]", name)
    await page.fill("#signin-form input[name=password]", "a brand new secret")
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#profile-name")
    # The link worked once.
    await page.goto(link)
    await page.fill("#reset-password input[name=password]", "yet another secret")
    await page.click("#reset-password button[type=submit]")
    await page.wait_for_selector("#reset-invalid:has-text('The link is used')")


async def test_choose_the_language_of_mail_on_the_profile(pages: Pages, server: Server) -> None:
    name = f"l_{uuid.uuid4().hex[:8]}"
    page = await pages.open()
    await sign_up(page, name)
    await page.goto("/#/profile")
    await page.wait_for_selector("#profile-language")
    assert await page.input_value("#profile-language") == "en"
    await page.select_option("#profile-language", "fr")
    await page.click("#profile-form button[type=submit]")
    await page.wait_for_selector(":text('Profile saved')")
    await page.reload()
    await page.wait_for_selector("#profile-language")
    assert await page.input_value("#profile-language") == "fr"
    await shoot(page, "email-language")
    await page.click("#verify-resend")
    text = await mail_for(server, f"{name}@example.com", "Confirmez votre adresse e-mail")
    assert text.startswith(f"Bonjour {name},")
