"""Words the centre's pages show, in Simplified Chinese and English.

The language is the `hg_lang` cookie (zh-CN, the default, or en), set by
the switch on every page.  Pages receive their language's labels as JSON
too, so server and browser name things the same way.  Every key exists in
both languages (tests/test_centre_api.py checks).
"""

from __future__ import annotations

from typing import Any

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
COOKIE = "hg_lang"

ALARM_TYPES = {
    "fire": ("火警", "Fire"),
    "medical": ("医疗求助", "Medical"),
    "security": ("治安报警", "Security"),
    "panic": ("紧急求助", "Panic"),
    "tamper": ("防拆报警", "Tamper"),
    "low_battery": ("电量低", "Low battery"),
    "residual_current": ("剩余电流", "Residual current"),
    "over_temp": ("线缆超温", "Over-temperature"),
    "over_current": ("过流", "Over-current"),
    "over_voltage": ("过压", "Over-voltage"),
    "under_voltage": ("欠压", "Under-voltage"),
    # supervision alarms a gateway raises
    "offline": ("设备离线", "Device offline"),
    "gateway_offline": ("网关离线", "Gateway offline"),
    "link_lost": ("链路中断（设备批量掉线）", "Broker/link lost (devices dropped together)"),
    # a device fault the gateway reports: one seq sent twice with different content
    "seq_conflict": ("设备序号冲突", "Device fault: sequence number reused"),
    # a gateway's warnings about itself: messages lost on the way, its disk,
    # telemetry it shed when overloaded
    "data_lost": ("网关告警：数据丢失", "Gateway warning: messages lost"),
    "disk_low": ("网关告警：磁盘空间不足", "Gateway warning: disk space low"),
    "shedding": ("网关告警：过载丢弃遥测", "Gateway warning: overloaded, telemetry shed"),
    # a device fault the centre raises: alarms over the rate, folded (flood.py)
    "flooding": ("设备报警泛滥", "Device flooding alarms"),
}

STATES = {
    "received": ("待确认", "Received"),
    "acknowledged": ("已受理", "Acknowledged"),
    "verified": ("已核实", "Verified"),
    "dispatched": ("已派遣", "Dispatched"),
    "resolved": ("已办结", "Resolved"),
}

ACTIONS = {
    "ack": ("受理", "Acknowledge"),
    "verify": ("核实", "Verify"),
    "dispatch": ("派遣", "Dispatch"),
    "resolve": ("办结", "Resolve"),
    # not an operator's: the centre closed a supervision alarm when the device came back
    "restore": ("自动恢复", "Restored (system)"),
    # who holds the alarm (dashboard/claims.py)
    "reassign": ("改派", "Reassign"),
    "release": ("释放", "Release"),
    # an action-plan step recorded on the alarm (dashboard/plans.py)
    "step": ("预案步骤", "Plan step"),
    # the grid worker's steps on their phone, and the centre's alert (worker.py)
    "accept": ("网格员已接单", "Grid worker accepted"),
    "arrive": ("网格员已到场", "Grid worker arrived"),
    "report": ("网格员已反馈", "Grid worker reported"),
    "overdue": ("网格员超时未接单", "Not accepted in time"),
}

OUTCOMES = {
    "genuine": ("真实警情", "Genuine"),
    "false": ("误报", "False alarm"),
    "test": ("测试", "Test"),
}

DISPATCH_TO = {
    "grid_worker": ("网格员", "Grid worker"),
    "patrol": ("巡逻队", "Patrol"),
}

ROLES = {
    "operator": ("值班员", "Operator"),
    "supervisor": ("值班长", "Supervisor"),
    "technician": ("技术员", "Technician"),
    "admin": ("管理员", "Administrator"),
    "grid_worker": ("网格员", "Grid worker"),
}

TEXT = {
    "title": ("报警台", "Alarm desk"),
    "centre": ("综治中心", "Monitoring centre"),
    "type": ("类型", "Type"),
    "device": ("设备", "Device"),
    "device_time": ("设备时间", "Device time"),
    "gateway_time": ("网关时间", "Gateway time"),
    "received_time": ("中心接收", "Received by centre"),
    "state": ("状态", "State"),
    "timer": ("计时", "Timer"),
    "empty": ("暂无报警", "No open alarms"),
    "not_synced": ("未校时", "not synced"),
    "connecting": ("连接中…", "Connecting…"),
    "live": ("实时", "Live"),
    "offline": ("已断开，正在重连", "Disconnected, reconnecting…"),
    "open_count": ("未处理", "Open"),
    "shown_of": ("已显示 {shown} 条，共 {total} 条", "Showing {shown} of {total}"),
    "load_more": ("加载更多", "Load more"),
    "select_alarm": ("选择一条报警查看详情", "Select an alarm to see its details"),
    "detail": ("报警详情", "Alarm details"),
    "outcome": ("核实结果", "Outcome"),
    "dispatched_to": ("派遣对象", "Dispatched to"),
    "note": ("备注", "Note"),
    "audit": ("处置记录", "Audit trail"),
    "notified": ("通知联系人", "Contacts notified"),
    "recent_readings": ("近期读数", "Recent readings"),
    "hazard": ("电气隐患", "Hazard"),
    "hazard_open": ("未整改", "open"),
    "hazard_rectified": ("已整改", "rectified"),
    "restored": ("传感器已恢复", "sensor restored"),
    "notified_none": ("尚未通知任何人", "Nobody notified yet"),
    "who": ("操作人", "Who"),
    "when": ("时间", "When"),
    "what": ("操作", "What"),
    "unacked": ("未受理", "Unacknowledged"),
    "verify_by": ("待核实", "To verify"),
    "shown_after": ("显示延迟", "Shown after"),
    "no_actions": ("无可执行操作", "No action available"),
    "error": ("操作失败", "Action failed"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误", "Wrong username or password"),
    "login_throttled": ("登录失败次数过多，请 {s} 秒后再试",
                        "Too many failed logins; try again in {s} s"),
    "login_locked": ("该账号因连续登录失败已锁定，请 {s} 秒后再试或请管理员解锁",
                     "This account is locked after failed logins; try again in {s} s "
                     "or ask an admin to unlock it"),
    "csrf_failed": ("页面已过期，请重试", "The page expired; please try again"),
    "language": ("English", "中文"),
    "data": ("数据", "Data"),
    "count": ("报警次数", "Alarms"),
    "count_folded": ("×{count}（其中 {folded} 次为合并的重复报警）",
                     "×{count} ({folded} repeats folded into this alarm)"),
    "folded": ("合并的重复报警", "Folded repeats"),
    "folded_shown": ("已显示 {shown} 次，共 {total} 次", "Showing {shown} of {total}"),
}

# the alarm desk: its columns, who holds an alarm, sound and notifications,
# keys; "{x}" are filled in by desk.js
DESK = {
    "title_count": ("({n}) 报警台", "({n}) Alarm desk"),
    # grid workers' tasks not accepted in time (worker.py): re-dispatch them
    "title_overdue": ("({n}) 网格员未接单", "({n}) not accepted by the grid worker"),
    "site": ("住户 / 地址", "Household / address"),
    "area": ("社区 / 网格", "Community / grid cell"),
    "waiting": ("等待时长", "Waiting"),
    "operator": ("处理人", "Operator"),
    "nobody": ("待领取", "Not taken"),
    "you": ("{user}（本人）", "{user} (you)"),
    "held_by": ("{user} 正在处理此报警；如需接手，请值班长改派",
                "{user} is handling this alarm; ask a supervisor to reassign it"),
    "reassign_to": ("改派给", "Reassign to"),
    "reassign_nobody": ("（无人，释放）", "(nobody: release)"),
    "released_logout": ("退出登录后释放", "released at logout"),
    "released_idle": ("超时未操作，自动释放", "released after idling"),
    "released_released": ("主动释放", "released"),
    "sound_blocked": ("浏览器阻止了报警声音 —— 点击此处开启声音",
                      "The browser is blocking the alarm sound — click here to turn it on"),
    "sound_off": ("报警声音已关闭", "Alarm sound off"),
    "sound_on": ("报警声音已开启", "Alarm sound on"),
    "mute": ("关闭声音", "Mute"),
    "unmute": ("开启声音", "Unmute"),
    "notify_title": ("新报警：{type}", "New alarm: {type}"),
    "notify_body": ("{site}，等待受理", "{site}, waiting to be taken"),
    "notify_allow": ("开启桌面通知", "Enable desktop notifications"),
    "keys": ("快捷键", "Keyboard shortcuts"),
    "keys_hint": ("按 ? 查看快捷键", "Press ? for keys"),
    "key_move": ("上一条 / 下一条报警", "Previous / next alarm"),
    "key_open": ("打开所选报警的详情", "Open the selected alarm's details"),
    "key_ack": ("受理（领取）", "Acknowledge (take it)"),
    "key_verify": ("核实（再选结果）", "Verify (then pick the outcome)"),
    "key_dispatch": ("派遣", "Dispatch"),
    "key_resolve": ("办结（需确认）", "Resolve (asks to confirm)"),
    "key_help": ("显示 / 隐藏本说明", "Show / hide these keys"),
    "key_close": ("关闭对话框，回到报警列表", "Close a dialog, back to the list"),
    "key_mute": ("关闭 / 开启声音", "Mute / unmute"),
    "key_note": ("填写备注（随下一个操作提交；Esc 回到列表）",
                 "Type a note (sent with the next action; Esc back to the list)"),
    "key_release": ("释放本人领取的报警", "Release an alarm you hold"),
    "key_reassign": ("改派（值班长）：输入用户名后按 Enter，留空则释放",
                     "Reassign (supervisor): type the user, then Enter; empty releases it"),
    "confirm": ("确定", "Confirm"),
    "cancel": ("取消", "Cancel"),
    "confirm_resolve": ("确认办结报警 #{id}（{type}）？办结后不能撤销。",
                        "Resolve alarm #{id} ({type})? This cannot be undone."),
    "pick_outcome": ("核实结果：1 真实警情，2 误报，3 测试",
                     "Outcome: 1 genuine, 2 false alarm, 3 test"),
    "pick_dispatch": ("派遣对象：1 网格员，2 巡逻队", "Dispatch to: 1 grid worker, 2 patrol"),
    "seconds": ("{n} 秒", "{n} s"),
    "sep": ("；", "; "),
    "seq": ("序号 {seq}", "seq {seq}"),
    "minutes": ("{m} 分 {s} 秒", "{m} min {s} s"),
    "hours": ("{h} 小时 {m} 分", "{h} h {m} min"),
}

# what a device sent, in words (dashboard/static/readable.js picks one by the
# keys present; "{v}" the reading, "{set}" the set point, in display units)
DATA = {
    "btn": ("按键：{v}", "Button: {v}"),
    "residual_current": ("剩余电流 {v} mA（设定 {set} mA）",
                         "Residual current {v} mA (set {set} mA)"),
    "over_temp": ("线缆温度 {v} °C（设定 {set} °C）", "Cable temperature {v} °C (set {set} °C)"),
    "over_current": ("电流 {v} A（设定 {set} A）", "Current {v} A (set {set} A)"),
    "over_voltage": ("电压 {v} V（设定上限 {set} V）", "Voltage {v} V (upper limit {set} V)"),
    "under_voltage": ("电压 {v} V（设定下限 {set} V）", "Voltage {v} V (lower limit {set} V)"),
    "battery": ("电池电压 {v} V（低电阈值 {set} V）", "Battery {v} V (low below {set} V)"),
    "zone": ("防区 {v}", "Zone {v}"),
    "channel": ("通道 {v}", "Channel {v}"),
    "latched": ("已锁定", "latched"),
    "reason": ("原因：{v}", "Reason: {v}"),
    "ref": ("撤销第 {v} 号报警", "Cancels alarm no. {v}"),
    "count": ("共 {v} 次", "{v} times"),
    # a gateway's warnings about itself (docs/gateway.md "Warnings")
    "seqs": ("丢失 {v} 条消息", "{v} messages lost"),
    "devices": ("涉及 {v} 台设备", "from {v} devices"),
    "most": ("丢失最多的设备 {v}（{n} 条）", "most from {v} ({n})"),
    "free_mb": ("剩余空间 {v} MB（下限 {set} MB）", "Free space {v} MB (minimum {set} MB)"),
    "shed": ("过载丢弃遥测 {v} 条", "{v} telemetry points shed"),
}

# the detail panel's chart: the reading drawn, and its set point
CHART = {
    "r_max": ("剩余电流最大值", "Residual current, maximum"),
    "t_max": ("线缆温度最高值", "Cable temperature, maximum"),
    "i_max": ("电流最大值", "Current, maximum"),
    "v_max": ("电压最高值", "Voltage, maximum"),
    "v_min": ("电压最低值", "Voltage, minimum"),
    "set": ("设定 {set}", "set {set}"),
    "sep": (" / ", " / "),
}

# who the centre told (contact notification): the channel and how it went
NOTIFY = {
    "log": ("仅记入日志", "log only"),
    "webhook": ("推送接口", "webhook"),
    "smtp": ("邮件", "email"),
    "sending": ("发送中", "sending"),
    "sent": ("已发送", "sent"),
    "failed": ("发送失败", "failed"),
}

# action plans (dashboard/plans.py): the desk's plan section, resolving
# with a result, the keys, and the /plans editor
PLAN = {
    "nav_plans": ("处置预案", "Action plans"),
    "plan": ("处置预案", "Action plan"),
    "done": ("已完成", "Done"),
    "no_answer": ("无人接听", "No answer"),
    "not_needed": ("无需执行", "Not needed"),
    "failed": ("未能完成", "Failed"),
    "pending": ("未执行", "Not done yet"),
    "record": ("记录", "Record"),
    "step_n": ("第 {n} 步", "Step {n}"),
    "no_longer": ("（已不在预案中）", "(no longer in the plan)"),
    "pick_step": ("第 {n} 步：{step}。结果：", "Step {n}: {step}. Outcome:"),
    "skipped": ("以下预案步骤尚未执行：{steps}。", "Plan steps not done: {steps}."),
    "pick_result": ("处置结果：Enter 按核实结果（{outcome}），或 1 真实警情，2 误报，3 测试",
                    "Result: Enter keeps the verified outcome ({outcome}), or 1 genuine, "
                    "2 false alarm, 3 test"),
    "keep_result": ("确定（{outcome}）", "Confirm ({outcome})"),
    "result": ("处置结果", "Result"),
    "key_step": ("记录预案第 1–9 步的结果", "Record the outcome of plan step 1–9"),
    "custom": ("已修改", "Edited"),
    "default": ("默认预案", "Shipped plan"),
    "edited_by": ("{user} 修改于 {when}", "Edited by {user} on {when}"),
    "text_zh": ("中文", "Chinese"),
    "text_en": ("英文", "English"),
    "add_step": ("添加步骤", "Add step"),
    "remove": ("删除", "Remove"),
    "up": ("上移", "Move up"),
    "down": ("下移", "Move down"),
    "save": ("保存", "Save"),
    "reset": ("恢复默认预案", "Back to the shipped plan"),
    "saved": ("已保存", "Saved"),
    "view_only": ("只读：值班长和管理员可以修改预案",
                  "Read only: supervisors and admins edit the plans"),
}

# the registry and device board pages, and the site in an alarm's detail
REGISTRY = {
    "nav_desk": ("报警台", "Alarm desk"),
    "nav_registry": ("登记管理", "Registry"),
    "nav_devices": ("设备看板", "Device board"),
    "nav_map": ("地图", "Map"),
    "households": ("住户", "Households"),
    "grid_cells": ("网格", "Grid cells"),
    "devices": ("设备", "Devices"),
    "code": ("编号", "Code"),
    "name": ("名称", "Name"),
    "address": ("地址", "Address"),
    "compound": ("小区", "Compound"),
    "community": ("社区", "Community"),
    "grid_cell": ("网格", "Grid cell"),
    "grid_worker": ("网格员", "Grid worker"),
    "worker_phone": ("网格员电话", "Grid worker's phone"),
    "note": ("备注", "Note"),
    "contacts": ("联系人", "Contacts"),
    "contact_name": ("联系人姓名", "Contact name"),
    "phone": ("电话", "Phone"),
    "relation": ("关系", "Relation"),
    "rank": ("顺序", "Rank"),
    "device_id": ("设备编号", "Device id"),
    "device_type": ("设备类型", "Device type"),
    "board": ("主板", "Board"),
    "firmware": ("固件", "Firmware"),
    "household": ("住户", "Household"),
    "key_ref": ("密钥来源", "Key reference"),
    # key_ref "centre": the device's key is kept in the centre's registry
    "key_ref_centre": ("中心登记", "kept by the centre"),
    "has_key": ("密钥", "Key"),
    "key_set": ("已配置", "set"),
    "key_missing": ("未配置", "missing"),
    "new_key": ("设置密钥", "Set key"),
    "key_hint": ("十六进制，32-128 位", "hex, 32-128 digits"),
    "button": ("报警按钮", "Alarm button"),
    "sensor": ("电气安全传感器", "Electrical sensor"),
    "add": ("添加", "Add"),
    "save": ("保存", "Save"),
    "edit": ("编辑", "Edit"),
    "delete": ("删除", "Delete"),
    "cancel": ("取消", "Cancel"),
    "confirm_delete": ("确定删除", "Delete"),
    "add_contact": ("添加联系人", "Add contact"),
    "none": ("无", "none"),
    "empty": ("暂无记录", "Nothing registered yet"),
    "view_only": ("只读：您的角色不能修改登记信息",
                  "Read only: your role cannot change the registry"),
    "online": ("在线", "Online"),
    "offline": ("离线", "Offline"),
    "unknown": ("未知", "Unknown"),
    "status": ("状态", "Status"),
    "last_heartbeat": ("最近心跳", "Last heartbeat"),
    "battery": ("电池", "Battery"),
    "rssi": ("信号强度", "RSSI"),
    "outbox": ("待发队列", "Outbox"),
    "open_alarms": ("未处理报警", "Open alarms"),
    "ago": ("前", "ago"),
    "never": ("从未", "never"),
    "updated": ("更新于", "Updated"),
    "unregistered": ("未登记设备", "Unregistered device"),
    "no_household": ("未绑定住户", "No household assigned"),
}

# the hazards and overview pages
CENTRE = {
    "nav_hazards": ("电气隐患", "Hazards"),
    "nav_overview": ("三色总览", "Overview"),
    "hazard": ("隐患", "Hazard"),
    "open": ("未整改", "Open"),
    "rectified": ("已整改", "Rectified"),
    "rectify": ("标记已整改", "Mark rectified"),
    "rectify_note": ("整改说明", "Inspection note"),
    "restored": ("传感器已恢复", "Sensor restored"),
    "community": ("社区", "Community"),
    "compound": ("小区", "Compound"),
    "grid_cell": ("网格", "Grid cell"),
    "worker": ("网格员", "Grid worker"),
    "households": ("住户数", "Households"),
    "warnings": ("推送预警", "Warnings pushed"),
    "opened": ("发现时间", "Opened"),
    "by": ("整改人", "By"),
    "incidents": ("确认警情", "Confirmed incidents"),
    "window": ("统计周期（天）", "Window (days)"),
    "red": ("红", "Red"),
    "yellow": ("黄", "Yellow"),
    "green": ("绿", "Green"),
    "unassigned": ("未绑定住户", "Unassigned"),
    "device": ("设备", "Device"),
    "type": ("类型", "Type"),
}

_TABLES = {"types": ALARM_TYPES, "states": STATES, "actions": ACTIONS,
           "outcomes": OUTCOMES, "dispatch_to": DISPATCH_TO, "roles": ROLES, "text": TEXT,
           "registry": REGISTRY, "centre": CENTRE, "desk": DESK, "data": DATA,
           "plan": PLAN, "chart": CHART, "notify": NOTIFY}


# the display name users.bootstrap_admin gives the first admin: not a name
# but the role in English, so pages show the role in the page's language
BOOTSTRAP_NAME = "Administrator"


def who(display_name: str, role: str, lang: str) -> str:
    """The header's "name · role" in the page's language; a user without a
    name of their own (none, or the bootstrap admin's) shows the role alone."""
    role_label = ROLES.get(role, (role, role))[LANGS.index(pick(lang))]
    if not display_name or display_name == BOOTSTRAP_NAME:
        return role_label
    return f"{display_name} · {role_label}"


def pick(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def for_lang(lang: str, tables: dict[str, dict[str, tuple[str, str]]] | None = None,
             ) -> dict[str, dict[str, str]]:
    """Every label table (these, or `tables` of another module) in one
    language: {"types": {...}, "text": {...}, ...}."""
    i = LANGS.index(pick(lang))
    return {name: {k: v[i] for k, v in table.items()}
            for name, table in (_TABLES if tables is None else tables).items()}


def page_context(lang: str) -> dict[str, Any]:
    labels = for_lang(lang)
    return {"lang": pick(lang), "other_lang": LANGS[1 - LANGS.index(pick(lang))],
            "labels": labels, "text": labels["text"]}
