"""Accounts: sign-up, log-in, log-out, profile, and pages that need a login."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_creates_the_account_logs_in_and_lands_on_the_lobby(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "alice", "display_name": "Alice A.", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == reverse("calls:lobby")
    alice = get_user_model().objects.get(username="alice")
    assert alice.display_name == "Alice A."
    lobby = client.get(reverse("calls:lobby"))
    assert lobby.status_code == 200 and "Alice A." in lobby.content.decode()


def test_signup_display_name_is_optional(client):
    client.post(reverse("accounts:signup"), {"username": "bob", "password1": PASSWORD, "password2": PASSWORD})
    bob = get_user_model().objects.get(username="bob")
    assert bob.display_name == "" and bob.shown_name == "bob"


def test_signup_with_mismatched_passwords_shows_the_error(client):
    response = client.post(
        reverse("accounts:signup"), {"username": "carol", "password1": PASSWORD, "password2": PASSWORD + "x"}
    )
    assert response.status_code == 200
    assert "password fields didn" in response.content.decode()
    assert not get_user_model().objects.filter(username="carol").exists()


def test_signup_with_a_taken_username_shows_the_error(client, make_user):
    make_user("dave")
    response = client.post(reverse("accounts:signup"), {"username": "dave", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_signup_applies_the_password_validators(client):
    response = client.post(reverse("accounts:signup"), {"username": "erin", "password1": "123", "password2": "123"})
    assert response.status_code == 200
    assert "too short" in response.content.decode()


def test_login_with_username_and_password(client, make_user):
    make_user("alice")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("calls:lobby")
    assert client.get(reverse("calls:lobby")).status_code == 200


def test_login_with_a_wrong_password_says_so(client, make_user):
    make_user("alice")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(client, make_user):
    client.force_login(make_user("alice"))
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("calls:lobby")).status_code == 302


def test_profile_changes_the_display_name(client, make_user):
    alice = make_user("alice", "Alice")
    client.force_login(alice)
    response = client.post(reverse("accounts:profile"), {"display_name": "Alice Liddell"}, follow=True)
    assert "Profile saved." in response.content.decode()
    alice.refresh_from_db()
    assert alice.display_name == "Alice Liddell"


@pytest.mark.parametrize("name", ["calls:lobby", "accounts:profile"])
def test_pages_need_a_login(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.parametrize("name", ["accounts:login", "accounts:signup"])
def test_login_and_signup_pages_are_public(client, name):
    assert client.get(reverse(name)).status_code == 200
