"""Courses in the web client: catalog → course → lesson → "lesson complete" → my courses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Pages, shoot, sign_up, until
from tests.browser.test_web import type_like_a_person, unique

pytestmark = pytest.mark.browser


async def course_slugs(page: Any) -> list[str]:
    slugs: list[str] = await page.eval_on_selector_all(
        "#course-list .course-card", "cards => cards.map((c) => c.dataset.slug)"
    )
    return slugs


async def filtered(page: Any, wanted: list[str]) -> None:
    await until(
        page,
        """(wanted) => JSON.stringify([...document.querySelectorAll('#course-list .course-card')]
             .map((c) => c.dataset.slug)) === JSON.stringify(wanted)""",
        wanted,
    )


async def test_catalog_lesson_and_completion(pages: Pages) -> None:
    page = await pages.open()
    await sign_up(page, unique("learner"))
    await page.click("nav a[href='#/courses']")
    await page.wait_for_selector("#course-list .course-card")
    everything = await course_slugs(page)
    assert len(everything) >= 6 and "home-row-basics" in everything
    assert await page.locator("#course-list .tag.premium").count() >= 1
    await shoot(page, "courses")

    await page.select_option("#course-language", "es")
    await filtered(page, ["espanol-primeros-pasos"])
    await page.select_option("#course-language", "")
    await page.fill("#course-search", '"home row" basics %')
    await until(
        page,
        "document.querySelector('#course-list .course-card')?.dataset.slug === 'home-row-basics'",
    )
    await page.select_option("#course-premium", "true")
    await page.fill("#course-search", "")
    await until(
        page,
        "[...document.querySelectorAll('#course-list .course-card')].length > 0 && "
        "[...document.querySelectorAll('#course-list .course-card')]"
        ".every((c) => c.querySelector('.tag.premium'))",
    )
    await page.select_option("#course-premium", "")
    await page.wait_for_selector("#course-list .course-card[data-slug=home-row-basics]")

    await page.click("#course-list .course-card[data-slug=home-row-basics]")
    await page.wait_for_selector("#course-title")
    await page.click("#enroll")
    await page.wait_for_selector("#lessons li[data-number='1'][data-state=available]")
    assert await page.get_attribute("#lessons li[data-number='2']", "data-state") == "locked"
    await shoot(page, "course")

    await page.click("#lessons li[data-number='1'] a.button")
    await page.wait_for_selector(".stage[data-phase=typing] #test-text .ch")
    assert "10 WPM" in await page.inner_text("#lesson-goal")
    text = await page.evaluate(
        "[...document.querySelectorAll('#test-text .ch')].map((s) => s.textContent).join('')"
    )
    await page.keyboard.type("x")  # a slip, corrected at once
    await page.wait_for_timeout(40)
    await page.keyboard.press("Backspace")
    await page.wait_for_timeout(40)
    await type_like_a_person(page, text)
    await page.wait_for_selector("#result[data-saved=true]")
    await page.wait_for_selector("#lesson-complete", timeout=15_000)
    assert "Lesson complete" in await page.inner_text("#lesson-complete")
    await shoot(page, "lesson-complete")

    await page.click("#next-lesson")
    await page.wait_for_selector(".stage[data-phase=typing] #test-text .ch")
    await page.click("#lesson a[href^='#/course']")
    await page.wait_for_selector("#lessons li[data-number='1'][data-state=completed]")
    assert await page.get_attribute("#lessons li[data-number='2']", "data-state") == "available"

    await page.click("nav a[href='#/profile']")
    await page.wait_for_selector("#my-courses li[data-slug=home-row-basics]")
    assert "1/5" in await page.inner_text("#my-courses li[data-slug=home-row-basics]")


async def test_a_premium_lesson_asks_for_a_subscription(pages: Pages) -> None:
    page = await pages.open()
    await sign_up(page, unique("reader"))
    await page.goto("/#/course?slug=speed-building")
    await page.wait_for_selector("#needs-subscription")
    await page.goto("/#/lesson?course=speed-building&n=1")
    await page.wait_for_selector("#lesson-refused")
    assert "subscription" in await page.inner_text("#lesson-refused")
