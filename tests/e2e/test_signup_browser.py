"""A newcomer signs up in a real browser and lands on the lobby."""

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_sign_up_in_the_browser_and_land_on_the_lobby(live_servers, open_page, artifacts_dir):
    server = live_servers()
    page, watch = open_page(server, name="newcomer", path="/accounts/signup/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=display_name]", "New Comer")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    assert "New Comer" in page.text_content("h1")
    page.screenshot(path=str(artifacts_dir / "lobby.png"), full_page=True)
    assert (artifacts_dir / "lobby.png").stat().st_size > 1000
    assert watch.errors == []
