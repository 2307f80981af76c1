"""Words of the grid worker's phone page (/worker), in Simplified Chinese
and English (the (zh-CN, en) pairs of dashboard/labels.py, kept apart as
map_labels.py is).  The page gets them as `labels.worker`."""

from __future__ import annotations

from dashboard import labels

WORKER = {
    "title": ("我的任务", "My tasks"),
    "app": ("网格员", "Grid worker"),
    "none": ("暂无派遣任务。新任务会自动出现。", "No task dispatched to you. New ones appear "
             "here by themselves."),
    "live": ("实时", "Live"),
    "offline": ("连接中断，正在重连……", "Connection lost, reconnecting…"),
    "alarm": ("报警", "Alarm"),
    "time": ("报警时间", "Alarm time"),
    "device": ("设备", "Device"),
    "address": ("地址", "Address"),
    "household": ("住户", "Household"),
    "contacts": ("联系人", "Contacts"),
    "call": ("拨打", "Call"),
    "no_contacts": ("未登记联系人", "No contacts registered"),
    "unregistered": ("设备未登记住户", "Device has no registered household"),
    "from_centre": ("中心留言", "From the centre"),
    "dispatched_by": ("派遣人", "Dispatched by"),
    "note": ("说明", "Note"),
    "note_hint": ("可选：现场情况", "Optional: what you found"),
    "accept": ("接单", "Accept"),
    "arrive": ("已到场", "I have arrived"),
    "report": ("提交反馈", "Send report"),
    "result": ("现场结果", "Result"),
    "step_assigned": ("待接单", "New task"),
    "step_overdue": ("待接单（已超时）", "New task (late)"),
    "step_accepted": ("已接单，前往中", "Accepted, on the way"),
    "step_arrived": ("已到场", "On site"),
    "step_reported": ("已反馈，等待中心办结", "Reported; the centre will close it"),
    "failed": ("操作失败：", "Could not do that: "),
    "logout": ("退出", "Log out"),
    "language": ("English", "中文"),
}


def for_lang(lang: str) -> dict[str, str]:
    return labels.for_lang(lang, {"worker": WORKER})["worker"]
