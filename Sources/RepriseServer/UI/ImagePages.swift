import Foundation
import RepriseArtifacts
import RepriseCore

// Images logged per step (`mlflow.log_image(image, key=…, step=…)`): one key at a time, a step
// slider (a plain GET form: it works without JavaScript), the image at that step, and links to
// the steps before and after.
extension RepriseAPI {
    func registerImagePages() {
        let base = config.staticPrefix
        route(.get, "/ui/runs/{run_id}/images", access: .experiment(.read, .pathRun("run_id")), uiPage { [self] call, _ in
            try await imagesPage(call, runID: try call.pathParameter("run_id"), base: base)
        })
    }

    /// One logged image file: `images/<key>+step+<n>+timestamp+<ms>+<uuid>.png` (older clients
    /// wrote `%` for `+`; `/` in a key is written `~`). Compressed copies are not listed.
    struct LoggedImage: Sendable {
        var key: String
        var step: Int64
        var timestamp: Int64
        var file: String

        init?(file: String) {
            guard file.hasSuffix(".png") else { return nil }
            let stem = String(file.dropLast(".png".count))
            let separator: Character = stem.contains("+step+") ? "+" : "%"
            let parts = stem.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
            // key, "step", n, "timestamp", ms, uuid — the key itself may not contain the separator.
            guard parts.count == 6, parts[1] == "step", parts[3] == "timestamp", let step = Int64(parts[2]), let ts = Int64(parts[4]) else {
                return nil
            }
            key = parts[0].replacingOccurrences(of: "~", with: "/")
            self.step = step
            timestamp = ts
            self.file = file
        }
    }

    func imagesPage(_ call: Call, runID: String, base: String) async throws -> Page {
        let run = try await store.getRun(id: runID)
        var body: HTML = "<p class=\"muted\"><a href=\"\(base)/ui/runs/\(HTML.q(runID))\">\(run.info.runName)</a> / images</p><h1>Images</h1>"
        var images: [LoggedImage] = []
        if let (repo, root) = try? repository(for: run.info.artifactURI), let listing = try? await repo.list(root + ["images"]) {
            images = listing.filter { !$0.isDir }.compactMap { LoggedImage(file: $0.path) }
        }
        if images.isEmpty {
            return ("Images", body + "<p class=\"muted\">No images logged per step: <code>mlflow.log_image(image, key=\"…\", step=…)</code> logs them.</p>")
        }
        let keys = Array(Set(images.map(\.key))).sorted()
        let key = call.query["key"]?.first.flatMap { k in keys.contains(k) ? k : nil } ?? keys[0]
        let series = images.filter { $0.key == key }.sorted { ($0.step, $0.timestamp) < ($1.step, $1.timestamp) }
        let steps = series.map(\.step)
        // The asked step, else the nearest logged one at or before it, else the first.
        let asked = call.query["step"]?.first.flatMap { Int64($0) } ?? steps.last!
        let index = series.lastIndex { $0.step <= asked } ?? 0
        let shown = series[index]

        body += "<form method=\"get\" class=\"inline\">"
        if keys.count > 1 {
            body += "<label>Key <select name=\"key\">" + keys.map { k in
                "<option value=\"\(k)\"\(k == key ? " selected" as HTML : "")>\(k)</option>" as HTML
            }.joined() + "</select></label> "
        } else {
            body += "<input type=\"hidden\" name=\"key\" value=\"\(key)\">"
        }
        body += "<label>Step <input type=\"range\" name=\"step\" min=\"\(steps.first!)\" max=\"\(steps.last!)\" value=\"\(shown.step)\" aria-describedby=\"step-now\"></label>"
        body += " <button>Show</button> <span id=\"step-now\">step \(shown.step) of \(steps.first!)–\(steps.last!) (\(series.count) images)</span></form>"
        func link(_ i: Int, _ label: String) -> HTML {
            "<a href=\"?key=\(HTML.q(key))&step=\(series[i].step)\">\(label)</a>"
        }
        var nav: [HTML] = []
        if index > 0 { nav.append(link(0, "first")); nav.append(link(index - 1, "← step \(series[index - 1].step)")) }
        if index < series.count - 1 { nav.append(link(index + 1, "step \(series[index + 1].step) →")); nav.append(link(series.count - 1, "last")) }
        if !nav.isEmpty { body += "<p class=\"pager\">" + nav.joined(separator: " ") + "</p>" }
        let src: HTML = "\(base)/get-artifact?run_uuid=\(HTML.q(runID))&path=\(HTML.q("images/" + shown.file))"
        body += "<figure><img alt=\"\(key) at step \(shown.step)\" src=\"\(src)\" style=\"max-width:100%;image-rendering:pixelated\">"
        body += "<figcaption>\(key), step \(shown.step), logged \(HTML.time(shown.timestamp))</figcaption></figure>"
        return ("Images · \(run.info.runName)", body)
    }
}
