"""Contact notification: on a household alarm, tell its bound contacts in
rank order, escalating to the next contact, then the grid worker and the
supervisor while no operator has acknowledged the alarm.

models.py    the `notifications` table: one row per delivery attempt
channels.py  the pluggable notifiers (webhook, SMTP, log)
plan.py      who is told at each step and which attempt is due (pure)
worker.py    the centre's background task that claims and sends attempts
"""
