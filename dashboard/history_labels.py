"""Words of the history and reports pages, in Simplified Chinese and English
(the same (zh-CN, en) pairs as dashboard/labels.py, kept apart so these
pages' strings change without touching the shared catalogue).  The pages
get them as `labels.history` and `labels.reports`, beside labels.py's."""

from __future__ import annotations

from typing import Any

from dashboard import labels

HISTORY = {
    "nav_history": ("历史查询", "History"),
    "nav_reports": ("统计报表", "Reports"),
    "title": ("报警历史查询", "Alarm history"),
    "from": ("起始日期", "From"),
    "to": ("截止日期（含）", "To (inclusive)"),
    "status": ("处理状态", "Status"),
    "any": ("全部", "Any"),
    "open": ("未办结", "Open"),
    "closed": ("已办结", "Closed"),
    "outcome": ("核实结果", "Outcome"),
    "none": ("未核实", "Not verified"),
    "type": ("报警类型", "Type"),
    "community": ("社区", "Community"),
    "compound": ("小区", "Compound"),
    "grid_cell": ("网格编号", "Grid cell code"),
    "household": ("住户编号", "Household code"),
    "device": ("设备编号", "Device id"),
    "operator": ("操作人", "Operator"),
    "search": ("查询", "Search"),
    "reset": ("清空条件", "Clear"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "total": ("共 {total} 条，显示第 {from}–{to} 条", "{total} found, showing {from}–{to}"),
    "nothing": ("没有符合条件的报警", "No alarm matches"),
    "next": ("下一页", "Next page"),
    "prev": ("上一页", "Previous page"),
    "first": ("第一页", "First page"),
    "created": ("接报时间", "Received"),
    "acked_by": ("受理人", "Acknowledged by"),
    "resolved": ("办结时间", "Resolved"),
    "place": ("位置", "Place"),
    "record": ("报警档案", "Alarm record"),
    "close": ("关闭", "Close"),
    "error": ("查询失败", "Search failed"),
    # the events tab (history_events.py)
    "tab_alarms": ("报警", "Alarms"),
    "tab_events": ("其他事件", "Other events"),
    "events_help": ("报警以外的设备和网关事件：复位、取消、测试、故障和监测事件（不含心跳和遥测）",
                    "What devices and gateways sent besides alarms: restores, cancels, tests, "
                    "faults and supervision (no heartbeats or telemetry)"),
    "kind": ("事件类别", "Kind"),
    "event_type": ("事件类型", "Type"),
    "event_time": ("发生时间", "Happened"),
    "data": ("内容", "Data"),
    "events_nothing": ("没有符合条件的事件", "No event matches"),
    "kind_restore": ("复位", "Restore"),
    "kind_cancel": ("取消", "Cancel"),
    "kind_test": ("测试", "Test"),
    "kind_fault": ("故障", "Fault"),
    "kind_supervision": ("监测", "Supervision"),
}

REPORTS = {
    "title": ("统计报表", "Reports"),
    "period": ("统计粒度", "Period"),
    "day": ("按日", "Daily"),
    "week": ("按周", "Weekly"),
    "month": ("按月", "Monthly"),
    "by": ("分组", "Group by"),
    "by_none": ("不分组", "All places"),
    "by_community": ("按社区", "By community"),
    "by_grid_cell": ("按网格", "By grid cell"),
    "show": ("生成报表", "Show report"),
    "print": ("打印", "Print"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "range": ("统计区间", "Range"),
    "generated": ("生成时间", "Generated"),
    "alarms": ("报警总数", "Alarms"),
    "by_type": ("按类型", "By type"),
    "by_outcome": ("按核实结果", "By outcome"),
    "false_rate": ("误报率", "False-alarm rate"),
    "false_rate_rule": ("误报率 = 误报 ÷（真实警情 + 误报），测试不计",
                        "False-alarm rate = false ÷ (genuine + false); tests excluded"),
    "timings": ("处置时效（秒）", "Response times (s)"),
    "step": ("环节", "Step"),
    "ack": ("受理", "Acknowledge"),
    "verify": ("核实", "Verify"),
    "dispatch": ("派遣", "Dispatch"),
    "resolve": ("办结", "Resolve"),
    "n": ("样本数", "Samples"),
    "p50": ("中位数 p50", "p50"),
    "p90": ("p90", "p90"),
    "per_operator": ("按操作人", "Per operator"),
    "operator": ("操作人", "Operator"),
    "sla": ("超时（SLA）", "SLA breaches"),
    "ack_late": ("受理超时", "Acknowledged late"),
    "verify_late": ("核实超时", "Verified late"),
    "sla_rule": ("受理时限 {ack} 秒，核实时限 {verify} 秒（自接报起）",
                 "Acknowledge within {ack} s, verify within {verify} s (from receipt)"),
    "places": ("分区统计", "Per place"),
    "place": ("区域", "Place"),
    "bucket": ("时段", "Period start"),
    "all_places": ("全部", "All"),
    "unassigned": ("未绑定住户", "Unassigned"),
    "hazards": ("电气隐患", "Electrical hazards"),
    "hazards_opened": ("期间发现", "Opened in range"),
    "hazards_rectified": ("期间发现且已整改", "Of those, rectified"),
    "hazards_open_now": ("当前未整改", "Open now"),
    "rectify_time": ("整改用时（小时）", "Time to rectify (h)"),
    "devices": ("设备可用性", "Device availability"),
    "offline_alarms": ("离线报警", "Offline alarms"),
    "offline_hours": ("离线时长（小时）", "Offline hours"),
    "offline_devices": ("离线设备数", "Devices offline"),
    "low_battery_alarms": ("电量低报警", "Low-battery alarms"),
    "low_battery_devices": ("电量低设备数", "Devices with low battery"),
    "colours": ("小区三色历史", "Colour history per compound"),
    "compound": ("小区", "Compound"),
    "community": ("社区", "Community"),
    "colour_red": ("红色", "Red"),
    "colour_yellow": ("黄色", "Yellow"),
    "colour_green": ("绿色", "Green"),
    "colour_rule": ("每个时段末按总览规则评定：此前 {days} 天内确认警情 ≥ {yellow} 起为黄色，"
                    "≥ {red} 起为红色，否则绿色（括号内为警情数）",
                    "Rated at the end of each period by the overview's rule: confirmed "
                    "incidents in the {days} days before; ≥ {yellow} yellow, ≥ {red} red, "
                    "else green (incidents in brackets)"),
    "colours_csv": ("导出三色 CSV", "Export colours CSV"),
    "no_compounds": ("暂无小区", "No compounds"),
    "workers": ("网格员处置（秒）", "Grid workers (s)"),
    "worker": ("网格员", "Grid worker"),
    "all_workers": ("全部网格员", "All grid workers"),
    "accept": ("接单用时 p50 / p90（次数）", "To accept p50 / p90 (tasks)"),
    "arrive": ("到场用时 p50 / p90（次数）", "To arrive p50 / p90 (tasks)"),
    "overdue": ("超时未接单", "Not accepted in time"),
    "workers_rule": ("自派单到该网格员手机起计时；改派后重新计时",
                     "From the dispatch that sent the task to the worker's phone; "
                     "a re-dispatch starts again"),
    "workers_csv": ("导出网格员 CSV", "Export grid workers CSV"),
    "late": ("超时 受理/核实", "Late ack / verify"),
    "hazards_short": ("隐患 发现/未整改", "Hazards opened / open"),
    "rectify_short": ("整改（小时）", "Rectify (h)"),
    "rows_rule": ("各环节用时为 p50 / p90 秒（样本数）；报警按接报时段和区域计，"
                  "隐患按发现时段和区域计",
                  "Times are p50 / p90 s (samples); an alarm counts in the period and place "
                  "of its receipt, a hazard in those of its opening"),
    "chart_counts": ("各时段报警数（按类型）", "Alarms per period, by type"),
    "chart_false": ("误报率", "False-alarm rate"),
    "error": ("报表生成失败", "Report failed"),
}

_TABLES = {"history": HISTORY, "reports": REPORTS}


def for_lang(lang: str) -> dict[str, dict[str, str]]:
    i = labels.LANGS.index(labels.pick(lang))
    return {name: {k: v[i] for k, v in table.items()} for name, table in _TABLES.items()}


def page_context(lang: str) -> dict[str, Any]:
    """labels.page_context with these tables added to its `labels`."""
    ctx = labels.page_context(lang)
    ctx["labels"] = {**ctx["labels"], **for_lang(lang)}
    return ctx


def nav(lang: str) -> dict[str, str]:
    """The navigation's two links, for every page's _nav.html."""
    table = for_lang(lang)["history"]
    return {"history": table["nav_history"], "reports": table["nav_reports"]}
