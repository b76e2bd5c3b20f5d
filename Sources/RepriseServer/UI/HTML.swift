import Foundation
import RepriseCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Markup that is safe to send. Literals are the programmer's own markup and go in as written;
/// every interpolated value is escaped (`& < > " '`, so text and double-quoted attribute values
/// alike), unless it is itself `HTML`. The one way to turn an arbitrary runtime string into markup
/// without escaping is `HTML(unsafeRaw:)`: `grep -rn unsafeRaw Sources` lists every such place.
///
///     let row: HTML = "<td><a href=\"\(base)/ui/runs/\(HTML.q(id))\">\(run.name)</a></td>"
///
/// URLs built from user data take `HTML.q` (percent-encoding) for each path or query component and
/// are then interpolated like any other value.
struct HTML: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The markup, ready to send.
    private(set) var rendered: String

    /// Markup from a string that is not escaped. Only for strings this server made safe itself
    /// (say why where you call it); never for user data.
    init(unsafeRaw markup: String) { rendered = markup }

    /// Text, escaped.
    init(escaping text: some StringProtocol) { rendered = Self.escape(String(text)) }

    init() { rendered = "" }

    /// A literal without interpolations: the programmer's markup. `StaticString`, so only a literal
    /// written in the source can come in this way.
    init(stringLiteral literal: StaticString) { rendered = literal.description }

    init(stringInterpolation: StringInterpolation) { rendered = stringInterpolation.markup }

    var description: String { rendered }
    var isEmpty: Bool { rendered.isEmpty }

    struct StringInterpolation: StringInterpolationProtocol {
        fileprivate var markup = ""

        init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity + interpolationCount * 16) }

        /// The literal parts: the programmer's markup, as written.
        mutating func appendLiteral(_ literal: StaticString) { markup += literal.description }

        /// Markup already built: as is.
        mutating func appendInterpolation(_ html: HTML) { markup += html.rendered }

        /// Everything else is text: escaped.
        mutating func appendInterpolation(_ text: String) { markup += HTML.escape(text) }
        mutating func appendInterpolation(_ text: Substring) { markup += HTML.escape(String(text)) }
        mutating func appendInterpolation(_ value: Int) { markup += HTML.escape(String(value)) }
        mutating func appendInterpolation(_ value: Int64) { markup += HTML.escape(String(value)) }
        mutating func appendInterpolation(_ value: Double) { markup += HTML.escape(String(value)) }
        mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) { markup += HTML.escape(value.description) }
    }

    static func + (a: HTML, b: HTML) -> HTML {
        var out = a
        out += b
        return out
    }
    static func += (a: inout HTML, b: HTML) { a.rendered += b.rendered }

    /// Text made safe for HTML content and double-quoted attribute values.
    private static func escape(_ s: String) -> String { htmlEscape(s) }

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

    /// A literal, so markup by construction (and escaping would break it: a style element is not entity-decoded).
    static let css: HTML = """
        :root{--fg:#1d2430;--muted:#5b6574;--bg:#fff;--panel:#f5f7fa;--line:#d8dde5;--accent:#2457c5;--ok:#17803d;--bad:#b42318;--warn:#9a6700;--hl:#fff4c2;--add:#e6ffec;--del:#ffebe9}
        @media (prefers-color-scheme: dark){:root{--fg:#e4e8ee;--muted:#9aa4b2;--bg:#12161c;--panel:#1b2129;--line:#303946;--accent:#7aa2ff;--ok:#4cc38a;--bad:#ff7b72;--warn:#e3b341;--hl:#3a3420;--add:#12361f;--del:#3d1a1a}}
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
        .tree{display:inline-block;width:1rem}code{overflow-wrap:anywhere}.account{margin-left:auto}
        input[type=password],input[type=number]{font:inherit;padding:.3rem .4rem;border:1px solid var(--line);border-radius:.25rem;background:var(--bg);color:var(--fg)}
        .secret{font-size:1rem;padding:.5rem;border:2px solid var(--warn);display:inline-block;user-select:all}
        pre.prompt{white-space:pre-wrap}table.diff td{border:0;padding:0 .3rem}table.diff pre{margin:0;padding:0;border:0;background:none;max-height:none;white-space:pre-wrap}
        figure.chart{position:relative}figure.chart svg{width:100%;height:auto}.chart-tip{position:absolute;pointer-events:none;background:var(--bg);border:1px solid var(--line);border-radius:.25rem;padding:.25rem .4rem;font-size:12px;white-space:pre;z-index:2;box-shadow:0 1px 4px rgba(0,0,0,.15)}
        .small{font-size:.85em}.chart-controls label{margin-right:.4rem}svg .zoom-sel{fill:currentColor;fill-opacity:.08}
        table.diff tr.add td{background:var(--add)}table.diff tr.del td{background:var(--del)}table.diff td.mark{width:1.2rem;font-family:monospace}
        """

    /// `/`: hands the URL's fragment to `/ui/static/route.js`; without JavaScript, goes to /ui/.
    static func fragmentRouter(base: String) -> HTML {
        """
        <!doctype html>
        <html lang="en" data-base="\(base)"><head><meta charset="utf-8"><title>Reprise</title>
        <noscript><meta http-equiv="refresh" content="0; url=\(base)/ui/"></noscript>
        <script src="\(base)/ui/static/route.js"></script></head>
        <body><p><a href="\(base)/ui/">Reprise</a></p></body></html>
        """
    }

    /// A whole page. `base` is the static prefix; the title is text. With authentication on, the
    /// header names the logged-in user (`Caller.principal`, a task-local the access middleware sets for
    /// the request) with links to their tokens and, for admins, the admin page, and a logout
    /// button when the page's CSRF token is at hand.
    static func page(_ title: String, base: String, body: HTML, csrf: String? = nil) -> HTML {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
        <title>\(title) · Reprise</title><style>\(css)</style></head>
        <body><header><a class="brand" href="\(base)/ui/">Reprise</a><nav aria-label="Main">
        <a href="\(base)/ui/">Experiments</a> · <a href="\(base)/ui/models">Models</a> · <a href="\(base)/ui/prompts">Prompts</a> · <a href="\(base)/ui/approvals">Approvals</a> · <a href="\(base)/ui/deployments">Deployments</a></nav>\(account(base: base, csrf: csrf))</header>
        <main>\(body)</main><script src="\(base)/ui/static/app.js" defer></script></body></html>
        """
    }

    /// The signed-in user's corner of the header; empty without a logged-in user.
    static func account(base: String, csrf: String?) -> HTML {
        guard let me = Caller.principal else { return HTML() }
        var h: HTML = "<div class=\"account\" aria-label=\"Account\">Signed in as <strong id=\"current-user\">\(me.username)</strong>"
        h += " · <a href=\"\(base)/ui/tokens\">Tokens</a>"
        if me.isAdmin { h += " · <a href=\"\(base)/ui/admin\">Admin</a>" }
        if let csrf {
            h += " <form class=\"inline\" method=\"post\" action=\"\(base)/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\"><button id=\"logout\">Log out</button></form>"
        }
        return h + "</div>"
    }

    static func table(_ header: [HTML], _ rows: [[HTML]], rowClasses: [String]? = nil, caption: String? = nil) -> HTML {
        var h: HTML = "<table>"
        if let caption { h += "<caption class=\"muted\">\(caption)</caption>" }
        if header.contains(where: { !$0.isEmpty }) {
            h += "<thead><tr>" + header.map { "<th scope=\"col\">\($0)</th>" }.joined() + "</tr></thead>"
        }
        h += "<tbody>"
        for (i, row) in rows.enumerated() {
            let cls: HTML = rowClasses.map { $0[i].isEmpty ? "" : " class=\"\($0[i])\"" } ?? ""
            h += "<tr\(cls)>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>"
        }
        return h + "</tbody></table>"
    }

    static func statusBadge(_ status: String) -> HTML {
        // Run statuses, trace states (OK, ERROR) and incident states (OPEN, CLOSED).
        let cls = ["FINISHED", "OK", "CLOSED"].contains(status) ? "ok" : (["FAILED", "KILLED", "ERROR"].contains(status) ? "bad" : "warn")
        return "<span class=\"badge \(cls)\">\(status)</span>"
    }

    /// Compliance and reproduction badges from a run's tags.
    static func evidenceBadges(_ tags: [KeyValue]) -> HTML {
        var out: [HTML] = []
        if let c = tags.last(where: { $0.key == PassportTag.compliant })?.value {
            out.append(c == "true" ? "<span class=\"badge ok\" title=\"complete under the experiment's policy\">complete</span>"
                : "<span class=\"badge bad\" title=\"missing: \(tags.last { $0.key == PassportTag.complianceMissing }?.value ?? "")\">incomplete</span>")
        }
        if let v = tags.last(where: { $0.key == PassportTag.verdict })?.value {
            let cls = v == "REPRODUCED" ? "ok" : (v == "DIVERGED" ? "bad" : "warn")
            out.append("<span class=\"badge \(cls)\">\(v.lowercased())</span>")
        }
        return out.joined(separator: " ")
    }
}

extension Sequence where Element == HTML {
    /// The pieces one after another, `separator` between them.
    func joined(separator: HTML = HTML()) -> HTML {
        var out = HTML()
        var first = true
        for piece in self {
            if !first { out += separator }
            out += piece
            first = false
        }
        return out
    }
}

/// A little progressive enhancement: select-all for run checkboxes and the compare button state.
/// Everything works without it.
enum UIScript {
    /// `/ui/static/app.js`, loaded by every page (`script-src 'self'`: no inline script). Select-all
    /// for run checkboxes, chart controls that apply on change, and on each chart a hover read-out of
    /// the exact values (from the chart's `data-xy`, set with textContent, never as markup),
    /// drag-to-zoom and double-click to reset (both only change the page's `from`/`to` query, which
    /// the server draws). Every page works without it.
    static let js = """
        (function(){
          document.querySelectorAll('[data-select-all]').forEach(function(box){box.addEventListener('change',function(){
            document.querySelectorAll('input[name=runs]').forEach(function(c){c.checked=box.checked;});});});
          document.querySelectorAll('form[data-autosubmit]').forEach(function(f){
            f.addEventListener('change',function(e){ if (e.target && e.target.type !== 'text' && e.target.type !== 'number') f.submit(); });});
          function fmtX(x, axis){
            if (axis === 'time') return new Date(x).toISOString().replace('T',' ').replace('.000Z','Z');
            if (axis === 'relative') return (x/1000) + ' s';
            return 'step ' + x;
          }
          function go(from, to){
            var u = new URL(location.href);
            if (from === null) { u.searchParams.delete('from'); u.searchParams.delete('to'); }
            else { u.searchParams.set('from', String(from)); u.searchParams.set('to', String(to)); }
            location.assign(u.toString());
          }
          document.querySelectorAll('figure.chart[data-x0]').forEach(function(fig){
            var svg = fig.querySelector('svg'); if (!svg) return;
            var plot = fig.getAttribute('data-plot').split(',').map(Number);
            var vw = Number(fig.getAttribute('data-vw')), axis = fig.getAttribute('data-axis');
            var x0 = Number(fig.getAttribute('data-x0')), x1 = Number(fig.getAttribute('data-x1'));
            var series = [].map.call(fig.querySelectorAll('polyline[data-xy]'), function(p){
              var sm = p.getAttribute('data-smooth');
              return {label: p.getAttribute('data-label'), smooth: sm ? sm.split(' ').map(Number) : null,
                pts: p.getAttribute('data-xy').split(';').map(function(s){ return s.split(' ').map(Number); })};
            });
            var ns = 'http://www.w3.org/2000/svg';
            var guide = document.createElementNS(ns, 'line');
            guide.setAttribute('y1', plot[1]); guide.setAttribute('y2', plot[1] + plot[3]);
            guide.setAttribute('stroke', 'currentColor'); guide.setAttribute('stroke-opacity', '.4'); guide.style.display = 'none';
            svg.appendChild(guide);
            var sel = document.createElementNS(ns, 'rect');
            sel.setAttribute('class', 'zoom-sel'); sel.setAttribute('y', plot[1]); sel.setAttribute('height', plot[3]); sel.style.display = 'none';
            svg.appendChild(sel);
            var tip = document.createElement('div'); tip.className = 'chart-tip'; tip.setAttribute('role', 'status'); tip.style.display = 'none';
            fig.appendChild(tip);
            function vx(ev){ var r = svg.getBoundingClientRect(); return (ev.clientX - r.left) * vw / r.width; }
            function dataX(v){ return x0 + (v - plot[0]) / plot[2] * (x1 - x0); }
            function nearest(pts, x){
              var lo = 0, hi = pts.length - 1;
              while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (pts[mid][0] < x) lo = mid; else hi = mid; }
              return Math.abs(pts[lo][0] - x) <= Math.abs(pts[hi][0] - x) ? lo : hi;
            }
            var start = null;
            svg.addEventListener('mousemove', function(ev){
              var v = Math.max(plot[0], Math.min(plot[0] + plot[2], vx(ev))), x = dataX(v);
              if (start !== null) { sel.style.display = ''; sel.setAttribute('x', Math.min(start, v)); sel.setAttribute('width', Math.abs(v - start)); }
              var lines = [];
              series.forEach(function(s){
                if (!s.pts.length) return;
                var i = nearest(s.pts, x), p = s.pts[i];
                var t = s.label + ': ' + p[1] + (s.smooth ? ' (smoothed ' + s.smooth[i] + ')' : '');
                if (p[4] > 1) t += '  [' + p[2] + ' … ' + p[3] + ', ' + p[4] + ' points]';
                lines.push(fmtX(p[0], axis) + '  ' + t);
              });
              if (!lines.length) return;
              tip.textContent = lines.join('\\n'); tip.style.display = '';
              var r = svg.getBoundingClientRect(), fr = fig.getBoundingClientRect();
              tip.style.left = Math.min(ev.clientX - fr.left + 12, fr.width - tip.offsetWidth - 4) + 'px';
              tip.style.top = (r.top - fr.top + 8) + 'px';
              guide.setAttribute('x1', v); guide.setAttribute('x2', v); guide.style.display = '';
            });
            svg.addEventListener('mouseleave', function(){ tip.style.display = 'none'; guide.style.display = 'none'; sel.style.display = 'none'; start = null; });
            svg.addEventListener('mousedown', function(ev){ ev.preventDefault(); start = Math.max(plot[0], Math.min(plot[0] + plot[2], vx(ev))); });
            svg.addEventListener('mouseup', function(ev){
              if (start === null) return;
              var v = Math.max(plot[0], Math.min(plot[0] + plot[2], vx(ev))), a = start; start = null; sel.style.display = 'none';
              if (Math.abs(v - a) < 4) return;
              var f = dataX(Math.min(a, v)), t = dataX(Math.max(a, v));
              if (axis === 'step') { f = Math.floor(f); t = Math.ceil(t); }
              go(f, t);
            });
            svg.addEventListener('dblclick', function(){ go(null, null); });
          });
        })();
        """

    /// `/`'s script: MLflow's fragment routes (`#/experiments/1/runs/<id>`, `#/models/<name>/versions/<v>`,
    /// `#/compare-runs?runs=[…]`, …) onto the matching /ui/ pages; anything else to /ui/.
    static let fragmentRoutes = """
        (function(){
          var base = document.documentElement.getAttribute('data-base') || '';
          var h = decodeURIComponent((location.hash || '').replace(/^#\\/?/, ''));
          var q = '', i = h.indexOf('?');
          if (i >= 0) { q = h.slice(i + 1); h = h.slice(0, i); }
          var p = h.split('/').filter(function(s){ return s.length > 0; });
          var e = encodeURIComponent, to = '/ui/';
          function param(name) {
            var m = q.match(new RegExp('(?:^|&)' + name + '=([^&]*)'));
            if (!m) return [];
            try { var v = JSON.parse(m[1]); return Array.isArray(v) ? v.map(String) : [String(v)]; } catch (x) { return m[1].split(','); }
          }
          if (p[0] === 'experiments' && p.length >= 4 && p[2] === 'runs') to = '/ui/runs/' + e(p[3]);
          else if (p[0] === 'experiments' && p.length >= 3 && p[2] === 'traces') to = '/ui/experiments/' + e(p[1]) + '/traces';
          else if (p[0] === 'experiments' && p.length >= 2) to = '/ui/experiments/' + e(p[1]);
          else if (p[0] === 'models' && p.length >= 4 && p[2] === 'versions') to = '/ui/models/' + e(p[1]) + '/versions/' + e(p[3]);
          else if (p[0] === 'prompts' && p.length >= 4 && p[2] === 'versions') to = '/ui/prompts/' + e(p[1]) + '#v' + e(p[3]);
          else if ((p[0] === 'models' || p[0] === 'prompts') && p.length >= 2) to = '/ui/' + p[0] + '/' + e(p[1]);
          else if (p[0] === 'models' || p[0] === 'prompts') to = '/ui/' + p[0];
          else if (p[0] === 'compare-runs' || p[0] === 'compare-experiments') {
            var runs = param('runs');
            to = runs.length >= 2 ? '/ui/compare?runs=' + runs.map(e).join(',') : '/ui/';
          }
          location.replace(base + to);
        })();
        """
}
