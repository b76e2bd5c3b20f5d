import Foundation
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Server-rendered HTML: every piece of user data goes through `esc` (text and attributes alike).
enum HTML {
    static func esc(_ s: String) -> String { htmlEscape(s) }

    /// A query-string component.
    static func q(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// `2026-11-30 14:05:09 UTC`. Computed directly (a DateFormatter per cell costs more than the page).
    static func time(_ ms: Int64?) -> String {
        guard let ms, ms > 0 else { return "" }
        var t = time_t(ms / 1000)
        var parts = tm()
        guard gmtime_r(&t, &parts) != nil else { return "" }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }

    static func duration(_ start: Int64, _ end: Int64?) -> String {
        guard let end, end >= start, start > 0 else { return "" }
        let s = Double(end - start) / 1000
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return String(format: "%.1f min", s / 60) }
        return String(format: "%.1f h", s / 3600)
    }

    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.6g", v)
    }

    static let css = """
        :root{--fg:#1d2430;--muted:#5b6574;--bg:#fff;--panel:#f5f7fa;--line:#d8dde5;--accent:#2457c5;--ok:#17803d;--bad:#b42318;--warn:#9a6700;--hl:#fff4c2}
        @media (prefers-color-scheme: dark){:root{--fg:#e4e8ee;--muted:#9aa4b2;--bg:#12161c;--panel:#1b2129;--line:#303946;--accent:#7aa2ff;--ok:#4cc38a;--bad:#ff7b72;--warn:#e3b341;--hl:#3a3420}}
        *{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);background:var(--bg)}
        a{color:var(--accent)}header{display:flex;gap:1.25rem;align-items:center;padding:.6rem 1.25rem;border-bottom:1px solid var(--line);background:var(--panel)}
        header .brand{font-weight:700;text-decoration:none;color:var(--fg)}main{padding:1rem 1.25rem;max-width:110rem}
        h1{font-size:1.35rem;margin:.2rem 0 .8rem;overflow-wrap:anywhere}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
        table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top;max-width:28rem;overflow-wrap:anywhere}
        th{background:var(--panel);position:sticky;top:0}tr.diff td{background:var(--hl)}td.num{text-align:right;font-variant-numeric:tabular-nums}
        .muted{color:var(--muted)}.badge{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.8rem;border:1px solid currentColor}
        .ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.error{color:var(--bad);border:1px solid var(--bad);padding:.4rem .6rem;border-radius:.3rem;margin:.4rem 0}
        form.inline{display:inline}input[type=text],input[type=search],textarea,select{font:inherit;padding:.3rem .4rem;border:1px solid var(--line);border-radius:.25rem;background:var(--bg);color:var(--fg)}
        input[type=search]{width:min(48rem,100%)}button{font:inherit;padding:.3rem .7rem;border:1px solid var(--line);border-radius:.25rem;background:var(--panel);color:var(--fg);cursor:pointer}
        button:focus,a:focus,input:focus,textarea:focus{outline:2px solid var(--accent);outline-offset:1px}
        .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}.card{border:1px solid var(--line);border-radius:.4rem;padding:.6rem .8rem;background:var(--panel)}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:1rem}svg{max-width:100%;height:auto}svg text{fill:var(--muted);font-size:11px}
        pre{background:var(--panel);padding:.6rem;overflow:auto;max-height:32rem;border:1px solid var(--line)}.pager{margin:.6rem 0;display:flex;gap:1rem}
        .tree{display:inline-block;width:1rem}code{overflow-wrap:anywhere}
        """

    /// A whole page. `base` is the static prefix; `title` and `body` are already safe HTML except the title text.
    static func page(_ title: String, base: String, body: String, script: Bool = false) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>\(esc(title)) · Reprise</title><style>\(css)</style></head>
        <body><header><a class="brand" href="\(base)/ui/">Reprise</a><nav aria-label="Main">
        <a href="\(base)/ui/">Experiments</a> · <a href="\(base)/ui/models">Models</a> · <a href="\(base)/ui/approvals">Approvals</a></nav></header>
        <main>\(body)</main>\(script ? "<script>\(UIScript.js)</script>" : "")</body></html>
        """
    }

    static func table(_ header: [String], _ rows: [[String]], rowClasses: [String]? = nil, caption: String? = nil) -> String {
        var h = "<table>"
        if let caption { h += "<caption class=\"muted\">\(esc(caption))</caption>" }
        if header.contains(where: { !$0.isEmpty }) {
            h += "<thead><tr>" + header.map { "<th scope=\"col\">\($0)</th>" }.joined() + "</tr></thead>"
        }
        h += "<tbody>"
        for (i, row) in rows.enumerated() {
            let cls = rowClasses.map { $0[i].isEmpty ? "" : " class=\"\($0[i])\"" } ?? ""
            h += "<tr\(cls)>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>"
        }
        return h + "</tbody></table>"
    }

    static func statusBadge(_ status: String) -> String {
        let cls = status == "FINISHED" ? "ok" : (status == "FAILED" || status == "KILLED" ? "bad" : "warn")
        return "<span class=\"badge \(cls)\">\(esc(status))</span>"
    }

    /// Compliance and reproduction badges from a run's tags.
    static func evidenceBadges(_ tags: [KeyValue]) -> String {
        var out: [String] = []
        if let c = tags.last(where: { $0.key == PassportTag.compliant })?.value {
            out.append(c == "true" ? "<span class=\"badge ok\" title=\"complete under the experiment's policy\">complete</span>"
                : "<span class=\"badge bad\" title=\"missing: \(esc(tags.last { $0.key == PassportTag.complianceMissing }?.value ?? ""))\">incomplete</span>")
        }
        if let v = tags.last(where: { $0.key == PassportTag.verdict })?.value {
            let cls = v == "REPRODUCED" ? "ok" : (v == "DIVERGED" ? "bad" : "warn")
            out.append("<span class=\"badge \(cls)\">\(esc(v.lowercased()))</span>")
        }
        return out.joined(separator: " ")
    }
}

/// A little progressive enhancement: select-all for run checkboxes and the compare button state.
/// Everything works without it.
enum UIScript {
    static let js = """
        document.querySelectorAll('[data-select-all]').forEach(function(box){box.addEventListener('change',function(){
          document.querySelectorAll('input[name=runs]').forEach(function(c){c.checked=box.checked;});});});
        """
}
