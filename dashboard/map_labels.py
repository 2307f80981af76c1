"""Words of the registry import section and the map page, in Simplified
Chinese and English (the (zh-CN, en) pairs of dashboard/labels.py, kept
apart as history_labels.py is).  Pages get them as `labels.reg_import` and
`labels.map` beside labels.py's tables; the desk its words for an alarm
opened from the map's link (`linked`)."""

from __future__ import annotations

from typing import Any

from dashboard import labels

IMPORT = {
    "title": ("批量导入", "Import from a file"),
    "help": ("一个 CSV 文件或 Excel 工作簿（.xlsx，读第一个工作表）可同时包含网格、住户、"
             "联系人和设备（kind 列区分），先检查，无误后再导入；有任何错误则什么都不写入。"
             "列说明见 docs/registry-import.md。",
             "One CSV file or Excel workbook (.xlsx, its first sheet) may hold grid cells, "
             "households, contacts and devices (the kind column says which). Check it "
             "first, then import; with any problem nothing is written. The columns are "
             "described in docs/registry-import.md."),
    "file": ("CSV 或 Excel 文件", "CSV or Excel file"),
    "check": ("检查文件", "Check file"),
    "confirm": ("确认导入", "Import now"),
    "checking": ("正在检查……", "Checking…"),
    "importing": ("正在导入……", "Importing…"),
    "no_file": ("请先选择文件", "Choose a file first"),
    "ok": ("检查通过：共 {rows} 行，尚未写入。", "All {rows} rows are good; nothing is written "
           "yet."),
    "done": ("已导入 {rows} 行。", "Imported {rows} rows."),
    "failed": ("发现 {n} 处错误，未导入任何内容。请修改文件后重新检查。",
               "{n} problems found: nothing was imported. Fix the file and check it again."),
    "row": ("行", "Row"),
    "column": ("列", "Column"),
    "problem": ("问题", "Problem"),
    "whole_file": ("整个文件", "whole file"),
    "kind": ("类别", "Kind"),
    "new": ("新增", "New"),
    "changed": ("更新", "Changed"),
    "grid_cells": ("网格", "Grid cells"),
    "households": ("住户", "Households"),
    "contacts": ("联系人", "Contacts"),
    "devices": ("设备", "Devices"),
}

MAP = {
    "title": ("地图", "Map"),
    "layers": ("图层", "Layers"),
    "cells": ("网格", "Grid cells"),
    "households": ("住户", "Households"),
    "devices": ("设备", "Devices"),
    "alarms": ("未处理报警", "Open alarms"),
    "no_tiles": ("未配置底图（离线模式）：仅显示网格、住户和报警",
                 "No map tiles configured (offline): grid cells, households and alarms only"),
    "open_alarm": ("到报警台处理", "Work it on the desk"),
    "open_in_history": ("在历史档案中查看", "Open its record"),
    "unplaced": ("{n} 条报警的设备没有坐标，未在地图上显示",
                 "{n} open alarms have no place on the map (no coordinates)"),
    "household": ("住户", "Household"),
    "device": ("设备", "Device"),
    "address": ("地址", "Address"),
    "received": ("接报时间", "Received"),
    "state": ("状态", "State"),
    "priority": ("优先级", "Priority"),
    "worker": ("网格员", "Grid worker"),
    "updated": ("更新于", "Updated"),
    "error": ("地图数据加载失败", "The map's data did not load"),
    "nothing": ("还没有带坐标的住户、设备或网格", "No household, device or grid cell has a "
                "place yet"),
}

# the desk opening the alarm of its address (/?alarm=ID), the map's link
LINKED = {
    "closed": ("报警 #{id} 已结案（{state}），不在报警台上。",
               "Alarm #{id} is closed ({state}) and no longer on the desk."),
    "unknown": ("没有编号为 #{id} 的报警。", "There is no alarm #{id}."),
    "failed": ("报警 #{id} 未能打开：", "Alarm #{id} could not be opened:"),
    "record": ("查看其历史档案", "Open its record"),
}

_TABLES = {"reg_import": IMPORT, "map": MAP}


def linked(lang: str) -> dict[str, str]:
    """The desk's words for an alarm opened from its address."""
    return labels.for_lang(lang, {"linked": LINKED})["linked"]


def page_context(lang: str) -> dict[str, Any]:
    """labels.page_context with these tables added to its `labels`."""
    ctx = labels.page_context(lang)
    ctx["labels"] = {**ctx["labels"], **labels.for_lang(lang, _TABLES)}
    return ctx
