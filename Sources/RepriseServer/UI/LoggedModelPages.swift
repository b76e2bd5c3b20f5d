import Foundation
import RepriseCore

// Logged models (MLflow 3's `m-…`) in the web UI: an experiment's list, and the run page's
// section of the models a run produced, each with the registry versions made from it.
extension RepriseAPI {
    func registerLoggedModelPages() {
        let base = config.staticPrefix
        let store = self.store
        let registry = self.registry
        route(.get, "/ui/experiments/{experiment_id}/models", access: .experiment(.read, .pathParameter("experiment_id")), uiPage { call, _ in
            let id = try call.pathParameter("experiment_id")
            let experiment = try await store.getExperiment(id: id)
            var body: HTML = "<h1>Logged models of \(experiment.name)</h1>"
            body += "<p class=\"muted\"><a href=\"\(base)/ui/experiments/\(HTML.q(id))\">runs</a> · logged models</p>"
            body += try await Self.loggedModelsSection(
                store: store, registry: registry, experimentIDs: [id], filter: nil, extraIDs: [], title: nil, base: base)
            return ("Logged models · \(experiment.name)", body)
        })
    }

    /// A table of logged models (those the filter finds, plus `extraIDs`), each with its source run
    /// and the registered versions made from it. Empty when there are none and a title is given.
    static func loggedModelsSection(
        store: any TrackingStore, registry: any RegistryStore, experimentIDs: [String], filter: String?, extraIDs: [String], title: String?,
        base: String
    ) async throws -> HTML {
        var models = try await store.searchLoggedModels(
            try LoggedModelSearchQuery(
                experimentIDs: experimentIDs, filter: filter, orderBy: [(field: "creation_time", ascending: false)], maxResults: 500, pageToken: nil)
        ).items
        for id in extraIDs where !models.contains(where: { $0.modelID == id }) {
            if let m = try? await store.getLoggedModel(id: id, allowDeleted: false) { models.append(m) }
        }
        if models.isEmpty {
            return title == nil ? "<p class=\"muted\">No logged models yet: <code>mlflow.&lt;flavor&gt;.log_model(…)</code> logs one.</p>" : ""
        }
        var rows: [[HTML]] = []
        for m in models {
            // Versions made from the model: registered from its run, naming it.
            var versions: [ModelVersion] = []
            if let run = m.sourceRunID, !run.isEmpty {
                let filter = "run_id = '\(run.replacingOccurrences(of: "'", with: "''"))'"
                versions = ((try? await registry.searchModelVersions(
                    try ModelVersionSearchQuery(filter: filter, orderBy: ["version_number DESC"], maxResults: 1000, pageToken: nil)))?.items ?? [])
                    .filter { $0.modelID == m.modelID }
            }
            rows.append([
                "\(m.name)<br><code>\(m.modelID)</code>", HTML.statusBadge(m.status.rawValue), "\(HTML.time(m.creationTime))",
                m.sourceRunID.map { "<a href=\"\(base)/ui/runs/\(HTML.q($0))\">\(String($0.prefix(8)))</a>" as HTML } ?? "",
                m.metrics.sorted { $0.key < $1.key }.prefix(6).map { "\($0.key)=\(HTML.number($0.value))" as HTML }.joined(separator: ", "),
                versions.map { "<a href=\"\(base)/ui/models/\(HTML.q($0.name))/versions/\($0.version)\">\($0.name) v\($0.version)</a>" as HTML }
                    .joined(separator: ", "),
            ])
        }
        let table = HTML.table(["Model", "Status", "Created", "Source run", "Metrics", "Registered as"], rows)
        return title.map { "<h2>\($0)</h2>" as HTML + table } ?? table
    }
}
