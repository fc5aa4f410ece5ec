"""PowerShell's CLIXML error stream, as WinRM delivers it, turned back into text.

A ``powershell.exe`` run without a console (every WinRM command) writes its
error, warning, verbose and progress records to stderr serialized::

    #< CLIXML
    <Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
      <Obj S="progress" RefId="0">...</Obj>
      <S S="Error">Get-Item : Cannot find path 'C:\\nope'_x000D__x000A_</S>
      <S S="Error">At line:1 char:1_x000D__x000A_</S>
    </Objs>

:func:`decode_clixml` keeps the text of the ``<S>`` records of the error,
warning, verbose and debug streams (progress records are noise), undoes the
``_xHHHH_`` escapes of XML-hostile characters, and returns plain lines. Text
that is not CLIXML is returned unchanged, as is CLIXML that does not parse
(the raw text is better evidence than nothing).
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

MARKER = "#< CLIXML"
_STREAMS = frozenset({"error", "warning", "verbose", "debug", "information"})
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)


def decode_clixml(text: str) -> str:
    start = text.find(MARKER)
    if start < 0:
        return text
    before, body = text[:start], text[start + len(MARKER):]
    lines: list[str] = []
    for chunk in re.findall(r"<Objs\b.*?</Objs>", body, flags=re.S):
        try:
            root = ElementTree.fromstring(chunk)
        except ElementTree.ParseError:
            return text
        for element in root.iter():
            if element.tag.rpartition("}")[2] != "S":
                continue
            stream = (element.get("S") or "").lower()
            if stream in _STREAMS:
                lines.append(_unescape(element.text or ""))
    decoded = "".join(lines).replace("\r\n", "\n").rstrip("\n")
    prefix = before.strip()
    return "\n".join(part for part in (prefix, decoded) if part) + ("\n" if decoded else "")
