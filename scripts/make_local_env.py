"""Write a local .env for `make run`: development mode with a fresh random secret key.

Never overwrites an existing .env, so running `make run` twice is safe.
"""

import secrets
from pathlib import Path

root = Path(__file__).resolve().parent.parent
target = root / ".env"
if not target.exists():
    lines = []
    for line in (root / ".env.example").read_text().splitlines():
        if line.startswith("DJANGO_SECRET_KEY="):
            line = f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}"
        elif line.startswith("DJANGO_DEBUG="):
            line = "DJANGO_DEBUG=true"
        lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    print("wrote .env for local development (edit it to change settings)")
