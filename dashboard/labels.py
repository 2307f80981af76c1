"""Words the alarm desk shows, Chinese first with English, until the full
language switch arrives.  The page receives these as JSON, so the server
and the browser name things the same way."""

from __future__ import annotations

ALARM_TYPES = {
    "fire": "火警 Fire",
    "medical": "医疗求助 Medical",
    "security": "治安报警 Security",
    "panic": "紧急求助 Panic",
    "tamper": "防拆报警 Tamper",
    "low_battery": "电量低 Low battery",
    "residual_current": "剩余电流 Residual current",
    "over_temp": "线缆超温 Over-temperature",
    "over_current": "过流 Over-current",
    "over_voltage": "过压 Over-voltage",
    "under_voltage": "欠压 Under-voltage",
}

STATES = {
    "received": "已接收 Received",
}

TEXT = {
    "title": "报警台 Alarm desk",
    "centre": "综治中心 Monitoring centre",
    "type": "类型 Type",
    "device": "设备 Device",
    "device_time": "设备时间 Device time",
    "gateway_time": "网关时间 Gateway time",
    "received_time": "中心接收 Received by centre",
    "state": "状态 State",
    "empty": "暂无报警 No open alarms",
    "not_synced": "未校时 not synced",
    "connecting": "连接中 Connecting…",
    "live": "实时 Live",
    "offline": "已断开，正在重连 Disconnected, reconnecting…",
    "open_count": "未处理 Open",
}


def for_page() -> dict[str, dict[str, str]]:
    return {"types": ALARM_TYPES, "states": STATES, "text": TEXT}
