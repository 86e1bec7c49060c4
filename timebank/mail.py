"""Emails the service sends (invitations), through the SMTP server the settings
name; none when there is none (a closed network: the admin hands the link over).
The standard library's SMTP client, in a thread, so the event loop never waits
on a mail server."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

import structlog

from timebank.settings import Settings

log = structlog.get_logger(__name__)


def invitation_message(
    settings: Settings, *, to: str, display_name: str, community_name: str, link: str
) -> EmailMessage:
    """In French and English, plain words, the link on a line of its own."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = f"{community_name} : votre invitation / your invitation"
    message.set_content(
        f"Bonjour {display_name},\n\n"
        f"Vous êtes invité(e) à rejoindre {community_name}.\n"
        "Ouvrez ce lien pour choisir votre mot de passe :\n\n"
        f"{link}\n\n"
        "Ce lien ne sert qu'une fois.\n\n"
        "---\n\n"
        f"Hello {display_name},\n\n"
        f"You are invited to join {community_name}.\n"
        "Open this link to choose your password:\n\n"
        f"{link}\n\n"
        "The link works once.\n"
    )
    return message


def _send(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s
    ) as client:
        if settings.smtp_starttls:
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username is not None and settings.smtp_password is not None:
            client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        client.send_message(message)


async def send(settings: Settings, message: EmailMessage) -> bool:
    """Whether the SMTP server took the message: False when none is configured or
    it failed (logged; the caller says so and the link can be handed over)."""
    if settings.smtp_host is None:
        return False
    try:
        await asyncio.to_thread(_send, settings, message)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("email_not_sent", error=type(error).__name__, detail=str(error))
        return False
    return True
