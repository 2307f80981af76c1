"""Notifiers: each sends one message to one person over one channel and
raises DeliveryFailed when it did not get through.

webhook  JSON POST to an SMS/voice provider's (or a bridge's) URL; 2xx = sent
smtp     an e-mail through an SMTP server (smtplib)
log      a line in the centre's log (always "sent"; for trials and demos)
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Protocol

import httpx

from dashboard.settings import Settings

log = logging.getLogger("homeguard.centre.notify")

CHANNELS = ("webhook", "smtp", "log")


class DeliveryFailed(Exception):
    def __init__(self, channel: str, target: str, reason: str) -> None:
        super().__init__(f"{channel} to {target}: {reason}")
        self.channel, self.target, self.reason = channel, target, reason


@dataclass(frozen=True)
class Message:
    """What a person is told about an alarm."""

    key: str  # alarm-step-channel: the same for every retry (idempotency key)
    alarm_id: int
    alarm_type: str
    device: str
    household: str
    address: str
    step: int
    role: str
    name: str
    phone: str
    email: str
    text: str


class Notifier(Protocol):
    channel: str

    def address(self, msg: Message) -> str:
        """Where this channel reaches the person ("" when it cannot)."""
        ...

    def send(self, msg: Message) -> None: ...


class WebhookNotifier:
    channel = "webhook"

    def __init__(self, url: str, timeout_s: float, token: str | None = None) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def address(self, msg: Message) -> str:
        return msg.phone

    def send(self, msg: Message) -> None:
        headers = {**self.headers, "Idempotency-Key": msg.key}
        try:
            r = httpx.post(self.url, json=asdict(msg), headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(self.channel, msg.phone, f"{type(exc).__name__}: {exc}") from exc
        if not r.is_success:
            raise DeliveryFailed(self.channel, msg.phone, f"HTTP {r.status_code} from {self.url}")


class SMTPNotifier:
    channel = "smtp"

    def __init__(self, host: str, port: int, sender: str, timeout_s: float,
                 user: str | None = None, password: str | None = None,
                 starttls: bool = False) -> None:
        self.host, self.port, self.sender, self.timeout_s = host, port, sender, timeout_s
        self.user, self.password, self.starttls = user, password, starttls

    def address(self, msg: Message) -> str:
        return msg.email

    def send(self, msg: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, msg.email
        mail["Subject"] = f"[Homeguard] {msg.alarm_type} alarm {msg.alarm_id}: {msg.address}"
        mail["Message-ID"] = f"<hg-{msg.key}@homeguard>"
        mail.set_content(msg.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(self.channel, msg.email, f"{type(exc).__name__}: {exc}") from exc


class LogNotifier:
    channel = "log"

    def address(self, msg: Message) -> str:
        return msg.phone or msg.email or msg.name

    def send(self, msg: Message) -> None:
        log.warning("notify %s %s (%s, %s): %s", msg.role, msg.name, msg.phone, msg.email,
                    msg.text)


def build_notifiers(settings: Settings) -> list[Notifier]:
    """The configured channels, in the order settings name them."""
    made: list[Notifier] = []
    for name in settings.notify_channels:
        if name == "webhook":
            assert settings.notify_webhook_url  # checked by Settings
            made.append(WebhookNotifier(settings.notify_webhook_url, settings.notify_timeout_s,
                                        settings.notify_webhook_token))
        elif name == "smtp":
            assert settings.notify_smtp_host  # checked by Settings
            made.append(SMTPNotifier(
                settings.notify_smtp_host, settings.notify_smtp_port, settings.notify_smtp_from,
                settings.notify_timeout_s, settings.notify_smtp_user,
                settings.notify_smtp_password, settings.notify_smtp_starttls))
        else:
            made.append(LogNotifier())
    return made
