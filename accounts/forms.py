from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import User


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "display_name")
        help_texts = {"display_name": "Optional: the name people see. Defaults to your username."}


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("display_name", "relay_only")
        labels = {"relay_only": "Hide my IP address from the people I call (relay only)"}
