"""The action plans the centre ships: per alarm type (labels.ALARM_TYPES,
every one) the steps an operator works through, in order, in zh-CN and en.
A supervisor edits a type's plan on /plans (plans.py); a type nobody edited
follows this table.  Steps are keys into STEPS, so one step reads the same
in every plan."""

from __future__ import annotations

STEPS: dict[str, tuple[str, str]] = {
    "call_household": ("致电住户，核实情况", "Call the household to check"),
    "call_contact_1": ("致电第一联系人", "Call contact 1"),
    "call_contact_2": ("第一联系人未接通时，致电第二联系人",
                       "Call contact 2 if contact 1 does not answer"),
    "notify_grid_worker": ("通知网格员上门查看", "Send the grid worker to the home"),
    "call_119": ("确认火情后拨打 119", "Call 119 (fire brigade) if confirmed"),
    "call_120": ("确认需要急救后拨打 120", "Call 120 (ambulance) if needed"),
    "call_110": ("确认警情后拨打 110", "Call 110 (police) if confirmed"),
    "cut_power": ("提醒住户断开该回路电源", "Ask the household to switch the circuit off"),
    "hazard_visit": ("安排电工上门排查隐患", "Send an electrician to inspect the wiring"),
    "check_board": ("在设备看板查看设备状态和最近心跳",
                    "Check the device's status and last heartbeat on the device board"),
    "send_technician": ("安排技术员上门检修设备", "Send a technician to service the device"),
    "replace_battery": ("通知住户或技术员更换电池",
                        "Have the household or a technician replace the battery"),
    "check_gateway": ("检查网关的运行状态和网络", "Check the gateway's health and network"),
    "call_technician": ("通知值班技术员", "Tell the technician on duty"),
    "check_devices": ("核对受影响设备的未处理报警",
                      "Check the open alarms of the devices affected"),
    "free_disk": ("清理网关磁盘空间", "Free disk space on the gateway"),
    "check_load": ("检查网关负载，必要时扩容", "Check the gateway's load; add capacity if needed"),
}

PLANS: dict[str, tuple[str, ...]] = {
    "fire": ("call_household", "call_contact_1", "notify_grid_worker", "call_119"),
    "medical": ("call_household", "call_contact_1", "call_120", "notify_grid_worker"),
    "security": ("call_household", "call_contact_1", "call_110", "notify_grid_worker"),
    "panic": ("call_household", "call_contact_1", "notify_grid_worker", "call_110"),
    "tamper": ("call_household", "check_board", "send_technician"),
    "low_battery": ("call_household", "replace_battery"),
    "residual_current": ("call_household", "cut_power", "hazard_visit", "notify_grid_worker"),
    "over_temp": ("call_household", "cut_power", "hazard_visit", "call_119"),
    "over_current": ("call_household", "cut_power", "hazard_visit"),
    "over_voltage": ("call_household", "cut_power", "hazard_visit"),
    "under_voltage": ("call_household", "hazard_visit"),
    "offline": ("check_board", "call_household", "send_technician"),
    "gateway_offline": ("check_gateway", "call_technician", "check_devices"),
    "link_lost": ("check_gateway", "call_technician", "check_devices"),
    "seq_conflict": ("check_board", "send_technician"),
    "data_lost": ("check_devices", "check_gateway", "call_technician"),
    "disk_low": ("free_disk", "call_technician"),
    "shedding": ("check_load", "call_technician"),
    "flooding": ("check_board", "call_household", "send_technician"),
}


def default_steps(alarm_type: str) -> list[dict[str, str]]:
    """The shipped plan of the type as stored steps; a type nobody planned
    (none today) gets the household call and the grid worker."""
    keys = PLANS.get(alarm_type, ("call_household", "notify_grid_worker"))
    return [{"key": k, "zh-CN": STEPS[k][0], "en": STEPS[k][1]} for k in keys]
