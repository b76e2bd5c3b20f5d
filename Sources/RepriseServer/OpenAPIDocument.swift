import HTTPTypes
import RepriseCore

/// The OpenAPI 3.1 description of every route the server answers: MLflow's tracking, logged-model,
/// registry, artifact and webhook endpoints, the meta routes, Reprise's extension API and the web UI.
/// Served at `/api/reprise/v1/openapi.json`. `OpenAPITests` checks it against the route table both
/// ways, and `tests/compat/test_fuzz.py` runs Schemathesis against it on the real binary.
///
/// It is built here in Swift (one source of truth) so that shared shapes (the error envelope,
/// entities, the webhook event list) are written once.
enum OpenAPIDocument {
    /// The document as served, serialized once.
    static let json: String = document.jsonString

    static let document: JSONValue = OpenAPIBuilder.build()
}

// MARK: - Route table

extension RepriseAPI {
    /// Every (method, path template) in the route table. `HEAD` is answered by every `GET` route
    /// and not listed; the `/ajax-api/` twins of `/api/` routes are mounted by `MountMiddleware`
    /// and not listed either.
    var routeSignatures: [(method: String, path: String)] {
        routeTable.map { ($0.method.rawValue, $0.path) }
    }
}

// MARK: - Building blocks

private typealias J = JSONValue

/// JSON Schema pieces.
private enum S {
    static func ref(_ name: String) -> J { ["$ref": .string("#/components/schemas/\(name)")] }

    static let string: J = ["type": "string"]
    static let nonEmpty: J = ["type": "string", "minLength": 1]
    static let boolean: J = ["type": "boolean"]
    static let int64: J = ["type": "integer", "format": "int64", "minimum": .int(Int64.min), "maximum": .int(Int64.max)]
    static let nonNegativeInt64: J = ["type": "integer", "format": "int64", "minimum": 0, "maximum": .int(Int64.max)]
    /// A double: a JSON number, or one of the strings protobuf JSON uses for the non-finite values.
    static let double: J = [
        "anyOf": [["type": "number"], ["type": "string", "enum": ["NaN", "Infinity", "-Infinity"]]],
    ]
    static let empty: J = ["type": "object", "description": "An empty message: {}"]

    static func int(_ min: Int64, _ max: Int64, format: String = "int32") -> J {
        ["type": "integer", "format": .string(format), "minimum": .int(min), "maximum": .int(max)]
    }

    static func string(_ description: String, minLength: Int64? = nil, maxLength: Int64? = nil, pattern: String? = nil, format: String? = nil) -> J {
        var o = JSONObject([("type", "string")])
        if let minLength { o["minLength"] = .int(minLength) }
        if let maxLength { o["maxLength"] = .int(maxLength) }
        if let pattern { o["pattern"] = .string(pattern) }
        if let format { o["format"] = .string(format) }
        o["description"] = .string(description)
        return .object(o)
    }

    static func enumeration(_ values: [String], _ description: String? = nil) -> J {
        var o = JSONObject([("type", "string"), ("enum", .array(values.map(J.string)))])
        if let description { o["description"] = .string(description) }
        return .object(o)
    }

    static func array(_ items: J, minItems: Int64? = nil, maxItems: Int64? = nil, _ description: String? = nil) -> J {
        var o = JSONObject([("type", "array"), ("items", items)])
        if let minItems { o["minItems"] = .int(minItems) }
        if let maxItems { o["maxItems"] = .int(maxItems) }
        if let description { o["description"] = .string(description) }
        return .object(o)
    }

    static func object(_ properties: [(String, J)], required: [String] = [], _ description: String? = nil) -> J {
        var o = JSONObject([("type", "object"), ("properties", .object(JSONObject(properties)))])
        if !required.isEmpty { o["required"] = .array(required.map(J.string)) }
        if let description { o["description"] = .string(description) }
        return .object(o)
    }

    /// The same schema, also admitting `null`: the server reads a null field as an absent one.
    static func nullable(_ schema: J) -> J {
        guard case .object(var o) = schema else { return schema }
        let combinators = ["$ref", "anyOf", "oneOf", "allOf", "not", "if"]
        if combinators.allSatisfy({ o[$0] == nil }), case .string(let type)? = o["type"] {
            o["type"] = [.string(type), "null"]
            if case .array(var values)? = o["enum"] {
                values.append(.null)
                o["enum"] = .array(values)
            }
            return .object(o)
        }
        return ["anyOf": [schema, ["type": "null"]]]
    }

    /// A request message: every optional field of every object may also be null.
    static func request(_ schema: J) -> J {
        guard case .object(var o) = schema else { return schema }
        if case .object(let properties)? = o["properties"] {
            var required = Set<String>()
            if case .array(let names)? = o["required"] { for case .string(let n) in names { required.insert(n) } }
            o["properties"] = .object(JSONObject(properties.members.map { name, property in
                let p = request(property)
                return (name, required.contains(name) ? p : nullable(p))
            }))
        }
        if let items = o["items"] { o["items"] = request(items) }
        for key in ["anyOf", "oneOf", "allOf"] {
            if case .array(let options)? = o[key] { o[key] = .array(options.map(request)) }
        }
        return .object(o)
    }

    static func withUnique(_ schema: J) -> J {
        guard case .object(var o) = schema else { return schema }
        o["uniqueItems"] = true
        return .object(o)
    }

    /// `schema` with `allOf` conditions added.
    static func withAll(_ schema: J, _ conditions: [J]) -> J {
        guard case .object(var o) = schema else { return schema }
        o["allOf"] = .array(conditions)
        return .object(o)
    }

    static func described(_ schema: J, _ description: String) -> J {
        guard case .object(var o) = schema else { return schema }
        if o["$ref"] != nil { return ["allOf": [schema], "description": .string(description)] }
        o["description"] = .string(description)
        return .object(o)
    }

    // Field shapes shared by many requests, with the rules the server enforces.

    /// No C0 control character or DEL anywhere (the server refuses them in names and paths).
    static let printable = #"^[^\x00-\x1f\x7f]+$"#
    static let printableOrEmpty = #"^[^\x00-\x1f\x7f]*$"#
    /// Metric, param and tag keys: `\w`, `-`, `.`, space, `:` and `/`, and a path that does not
    /// normalize to another one (no empty, `.` or `..` segment, no leading `/` or `..`).
    static let keyPattern = #"^\.?[\w\- :][\w\-. :]*(/[\w\-. :]*[\w\- :][\w\-. :]*)*$"#
    static let key = string("A metric, param or tag key (at most 250 characters).", minLength: 1, maxLength: 250, pattern: keyPattern)
    static let experimentID = string("An experiment id: an integer rendered as a string.", pattern: "^[0-9]{1,18}$")
    static let runID = string(
        "A run id (32 hex characters for runs this server created); an unknown one is 404. The legacy name run_uuid is accepted too.", minLength: 1)
    /// Where the server checks the form of a run id (log-batch, log-inputs).
    static let checkedRunID = string("A run id: a letter or digit, then up to 255 of letters, digits, '_' and '-'.", minLength: 1, maxLength: 256, pattern: #"^[A-Za-z0-9][\w\-]{0,255}$"#)
    static let experimentName = string("An experiment name.", minLength: 1, maxLength: 500, pattern: printable)
    static let modelName = string(
        "A registered model name: not blank, no control character, '/' or ':'.", minLength: 1,
        pattern: #"^[^\x00-\x1f\x7f/:]*[^\s\x00-\x1f\x7f/:][^\x00-\x1f\x7f/:]*$"#)
    static let loggedModelName = string(
        "A logged model name: none of / : . % \" '; empty or absent: a random name.", pattern: #"^[^\x00-\x1f\x7f/:.%"']*$"#)
    static let loggedModelID = string("A logged model id (m-<32 hex>).", minLength: 1)
    static let version = string("A model version number, as a string (an integer is accepted too).", pattern: "^[0-9]{1,18}$")
    static let alias: J = [
        "type": "string", "minLength": 1, "maxLength": 255, "pattern": #"^[\w\-]+$"#,
        "not": ["pattern": "^([Ll][Aa][Tt][Ee][Ss][Tt]|[Vv][0-9]+)$"],
        "description": "An alias: letters, digits, '_' and '-'; 'latest' and v<number> are reserved.",
    ]
    static let stage = enumeration(
        ["None", "Staging", "Production", "Archived", "none", "staging", "production", "archived"],
        "A model version stage (case-insensitive).")
    static let tags = array(ref("TagInput"), "Tags: [{key, value}].")
    /// An experiment id in a list: a string, or an integer.
    static let experimentIDItem: J = [
        "anyOf": [
            string("An experiment id.", pattern: "^[+-]?[0-9]{1,18}$"),
            ["type": "integer", "format": "int64", "minimum": .int(Int64.min), "maximum": .int(Int64.max)],
        ],
    ]
    /// Free text with at least one character that is not white space.
    static func required(_ description: String) -> J {
        string(description, minLength: 1, pattern: #"^[\s\S]*\S[\s\S]*$"#)
    }
    static func pageToken(_ what: String = "a previous response's next_page_token") -> J {
        string("The page to read: \(what).", format: "mlflow-page-token")
    }
    static func filter(_ grammar: String) -> J {
        string("A filter in MLflow's search grammar (\(grammar)).", format: "mlflow-filter-\(grammar)")
    }
    static func orderBy(_ grammar: String) -> J {
        string("An order_by clause: a \(grammar) field, then ASC or DESC.", format: "mlflow-order-by-\(grammar)")
    }
    /// A relative artifact path: components of at most 255 bytes, no control
    /// character, '#' or backslash, no '..' component, not absolute (nor a drive letter), at most 1024 bytes.
    /// The artifact path at the end of a URL. OpenAPI path parameters are one segment, so this one is
    /// described as one; the server takes the rest of the path, '/' included, with the rules above.
    static let artifactPathSegment: J = [
        "type": "string", "minLength": 1, "maxLength": 255, "pattern": #"^[^\x00-\x1f\x7f#\\/]+$"#,
        "not": ["pattern": #"^\.\.?$|^[^\x00-\x40\x5b-\x60\x7b-\x7f]:"#],
        "description": "The rest of the URL: a relative artifact path, which may contain '/' (components of at most 255 bytes, no '..', no control character, '#' or backslash).",
    ]

    static func artifactPath(file: Bool) -> J {
        var o = JSONObject([("type", "string")])
        if file { o["minLength"] = 1 }
        o["maxLength"] = 1024
        o["pattern"] = #"^[^\x00-\x1f\x7f#\\/]{0,255}(/[^\x00-\x1f\x7f#\\/]{0,255}){0,3}$"#
        o["not"] = ["pattern": .string(file ? #"(^|/)\.\.(/|$)|^/|^[^\x00-\x40\x5b-\x60\x7b-\x7f]:|^(\.?/)*\.?$"# : #"(^|/)\.\.(/|$)|^/|^[^\x00-\x40\x5b-\x60\x7b-\x7f]:"#)]
        o["description"] = .string(
            "A relative artifact path: no '..' component, not absolute, no control character, '#' or backslash\(file ? "; it names a file" : "; empty for the root").")
        return .object(o)
    }
}

/// Parameters, bodies and responses.
private enum P {
    static func query(_ name: String, _ schema: J, required: Bool = false) -> J {
        var o = JSONObject([("name", .string(name)), ("in", "query")])
        if required { o["required"] = true }
        if case .object(let s) = schema, s["type"] == "array" {
            o["style"] = "form"
            o["explode"] = true
        }
        o["schema"] = schema
        return .object(o)
    }

    static func path(_ name: String, _ description: String) -> J {
        let schema: J
        switch name {
        case "artifact_path": schema = S.artifactPathSegment
        case "experiment_id": schema = S.experimentID
        default: schema = S.nonEmpty
        }
        return ["name": .string(name), "in": "path", "required": true, "description": .string(description), "schema": schema]
    }

    /// A JSON request body; required when its schema has required fields.
    static func json(_ schema: J, required: Bool? = nil) -> J {
        var isRequired = required ?? false
        if required == nil, case .array(let names)? = schema["required"], !names.isEmpty { isRequired = true }
        return ["required": .bool(isRequired), "content": ["application/json": ["schema": S.request(schema)]]]
    }

    static let binary: J = [
        "required": false,
        "content": ["application/octet-stream": ["schema": ["type": "string", "format": "binary"]]],
    ]

    static func form(_ schema: J) -> J {
        ["required": true, "content": ["application/x-www-form-urlencoded": ["schema": schema]]]
    }
}

private enum R {
    static func json(_ schema: J, _ description: String) -> J {
        ["description": .string(description), "content": ["application/json": ["schema": schema]]]
    }

    static let empty = json(S.empty, "Done: {}")

    static func text(_ description: String) -> J {
        ["description": .string(description), "content": ["text/plain": ["schema": S.string]]]
    }

    static let html: J = ["description": "An HTML page.", "content": ["text/html": ["schema": S.string]]]

    /// A file: its type is guessed from the name (text files are served as text/plain).
    static let file: J = [
        "description": "The file's bytes, with Content-Disposition: attachment and X-Content-Type-Options: nosniff.",
        "content": .object(JSONObject(
            ["application/octet-stream", "text/plain", "image/png", "image/jpeg", "image/gif", "image/svg+xml", "application/pdf"]
                .map { ($0, ["schema": ["type": "string", "format": "binary"]]) })),
    ]

    static let redirect: J = [
        "description": "See Other: the page to go to next.",
        "headers": ["Location": ["required": true, "schema": S.string]],
    ]

    static let errorNames: [Int: String] = [
        400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 501: "NotImplemented", 503: "Unavailable",
    ]

    static func error(_ status: Int) -> J { ["$ref": .string("#/components/responses/\(errorNames[status]!)")] }

    static func htmlError(_ status: Int) -> J { ["$ref": .string("#/components/responses/HTML\(status)")] }

    static let loginRedirect: J = [
        "description": "Not logged in (authentication on): See Other, to /ui/login?next=<this page>.",
        "headers": ["Location": ["required": true, "schema": S.string]],
    ]
}

private struct OpenAPIBuilder {
    var paths = JSONObject()

    /// Adds one operation. `ok` is the success responses; `errors` the error statuses it can give
    /// (JSON envelope), `htmlErrors` those it gives as HTML pages.
    mutating func add(
        _ method: String, _ path: String, tag: String, _ summary: String, params: [J] = [], body: J? = nil,
        ok: [(String, J)], errors: [Int] = [], htmlErrors: [Int] = [], description: String? = nil
    ) {
        var op = JSONObject([("tags", [.string(tag)]), ("summary", .string(summary))])
        if let description { op["description"] = .string(description) }
        op["operationId"] = .string(Self.operationID(method, path))
        var parameters: [J] = []
        var i = path.startIndex
        while let open = path[i...].firstIndex(of: "{"), let close = path[open...].firstIndex(of: "}") {
            let name = String(path[path.index(after: open)..<close])
            parameters.append(P.path(name, Self.pathDescriptions[name] ?? name))
            i = path.index(after: close)
        }
        parameters += params
        if !parameters.isEmpty { op["parameters"] = .array(parameters) }
        if let body { op["requestBody"] = body }
        var responses = JSONObject(ok)
        var errors = Set(errors)
        var htmlErrors = Set(htmlErrors)
        // With authentication on, every route but the open ones needs credentials: a browser
        // asking for a page is sent to the login form, anything else gets MLflow's plain-text 401.
        if Self.openOperations.contains("\(method) \(path)") {
            op["security"] = []
        } else if tag == "ui" && method == "get" {
            if responses["303"] == nil { responses["303"] = R.loginRedirect }
        } else {
            errors.insert(401)
        }
        // Any request can be refused before routing: a Host not allowed, a cross-site write.
        if tag == "ui" { htmlErrors.insert(403) } else { errors.insert(403) }
        // A large JSON body waits for a permit to be read, and gives up with 503 when the server is busy.
        if case .object(let content)? = body?["content"], content["application/json"] != nil { errors.insert(503) }
        for status in errors.sorted() { responses[String(status)] = R.error(status) }
        for status in htmlErrors.sorted() { responses[String(status)] = R.htmlError(status) }
        op["responses"] = .object(responses)
        var item: JSONObject
        if case .object(let existing)? = paths[path] { item = existing } else { item = JSONObject() }
        item[method] = .object(op)
        paths[path] = .object(item)
    }

    /// The operations that need no credentials when authentication is on: the routes the table
    /// declares `.open`. `OpenAPITests` checks that the two agree.
    static let openOperations: Set<String> = [
        "get /health", "get /ready", "get /version", "get /api/3.0/mlflow/server-info", "get /ui/static/app.js", "get /ui/static/route.js", "get /api/reprise/v1/openapi.json",
        "get /ui/login", "post /ui/login",
    ]

    static func operationID(_ method: String, _ path: String) -> String {
        var out = method
        var upper = true
        for c in path {
            if c.isLetter || c.isNumber {
                out.append(upper ? Character(c.uppercased()) : c)
                upper = false
            } else {
                upper = true
            }
        }
        return path.hasSuffix("/") ? out + "Index" : out
    }

    static let pathDescriptions: [String: String] = [
        "artifact_path": "A relative artifact path under the artifact root; may contain '/'.",
        "model_id": "A logged model id (m-<32 hex>).",
        "tag_key": "A tag key.",
        "webhook_id": "A webhook id.",
        "request_id": "An approval request id.",
        "experiment_id": "An experiment id.",
        "run_id": "A run id.",
        "name": "A registered model name.",
        "token_id": "An access token id.",
        "trace_id": "A trace id (tr-<32 hex> from the MLflow client).",
        "assessment_id": "An assessment id (a-<32 hex>).",
        "dataset_id": "An evaluation dataset id (d-<32 hex>).",
        "deployment_id": "A deployment id (dep-<32 hex>).",
        "incident_id": "An incident id (inc-<32 hex>).",
        "key": "A tag key.",
    ]

    static func build() -> J {
        var b = OpenAPIBuilder()
        b.meta()
        b.experiments()
        b.runs()
        b.artifacts()
        b.loggedModels()
        b.traces()
        b.evaluation()
        b.registry()
        b.webhooks()
        b.governance()
        b.repro()
        b.deployments()
        b.identity()
        b.ui()
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Reprise",
                "version": .string(RepriseVersion.string),
                "description": """
                    An MLflow-compatible tracking server. This document lists every route the server answers: \
                    MLflow's REST API (tracking, logged models, model registry, the mlflow-artifacts proxy, \
                    webhooks and the meta routes), Reprise's own extension API under /api/reprise/v1 \
                    (protected aliases, approvals, rollback, the audit trail, webhook delivery logs, \
                    experiment policies, reproduction verdicts, lineage) and the server-rendered web UI \
                    under /ui. Every /api/... route is also served at /ajax-api/... (the MLflow UI's \
                    twins), which are not listed separately. With --static-prefix P every path starts \
                    with P. GET requests carry their message as query parameters (a repeated field as a \
                    repeated key); POST, PATCH, PUT and DELETE requests carry a JSON body \
                    (Content-Type: application/json; snake_case or camelCase field names; int64 values \
                    as numbers or decimal strings). Errors use MLflow's envelope {error_code, message} \
                    with MLflow's status for each code (RESOURCE_ALREADY_EXISTS is 400). A path that \
                    exists called with another method gets 405. Authentication is off unless the server \
                    runs with --app-name basic-auth (MLflow's flag; also --auth): then every operation \
                    but those with an empty security list (/health, /version, server-info, the UI's script \
                    and sign-in form, this document) needs \
                    credentials (HTTP Basic, a bearer access token rpt_... or a bearer JWT from the \
                    configured OIDC issuer, or the web UI's session cookie), answers 401 without them \
                    (text/plain, WWW-Authenticate: Basic realm="mlflow"; the UI's pages redirect to \
                    /ui/login instead) and 403 text/plain "Permission denied" to a caller whose \
                    permission (READ < USE < EDIT < MANAGE on the experiment or registered model; admins \
                    bypass) does not allow the operation; searches return only what the caller may \
                    read. The actor recorded in the audit trail is then the authenticated user. With \
                    authentication off the caller is named by the X-Reprise-Actor header (or the HTTP \
                    Basic user name) and is recorded as unauthenticated, and the identity routes answer \
                    404. Filters, order_by clauses and page tokens use the custom formats \
                    mlflow-filter-*, mlflow-order-by-* and mlflow-page-token: strings in MLflow's \
                    search grammar and the tokens this server hands out.
                    """,
            ],
            "tags": .array(
                [
                    ("meta", "Health, version and capabilities"), ("experiments", "MLflow experiments"), ("runs", "MLflow runs and metrics"),
                    ("artifacts", "Artifacts: the mlflow-artifacts proxy and run-relative downloads"),
                    ("logged-models", "MLflow 3 logged models"), ("traces", "MLflow 3 traces: OTLP spans, trace infos, assessments"),
                    ("evaluation", "MLflow 3 evaluation datasets and the scorer registry"),
                    ("registry", "MLflow model registry"),
                    ("webhooks", "MLflow webhooks (registry events)"), ("governance", "Reprise: protected aliases, approvals, audit"),
                    ("reproducibility", "Reprise: experiment policies, reproductions, lineage"),
                    ("deployments", "Reprise: deployments resolved to exact versions, production measurements, incidents"),
                    ("identity", "Users, roles (Reprise's groups) and grants (MLflow's basic-auth API); Reprise's who-am-I, access tokens and service accounts"),
                    ("ui", "The web UI (HTML)"),
                ].map { ["name": .string($0.0), "description": .string($0.1)] }),
            // Any one of them, when authentication is on; the open operations say `security: []`.
            "security": [["basic": []], ["bearer": []], ["session": []]],
            "paths": .object(b.paths),
            "components": components(),
        ]
    }

    // MARK: Meta

    mutating func meta() {
        add("get", "/health", tag: "meta", "Liveness: the text OK", ok: [("200", R.text("OK"))])
        add(
            "get", "/ready", tag: "meta", "Readiness: OK once the database answers a read within 5 s, else 503",
            ok: [("200", R.text("OK")), ("503", R.text("The database is not reachable."))])
        add(
            "get", "/metrics", tag: "meta", "Prometheus metrics (text format), with --expose-prometheus; 404 when off",
            ok: [("200", R.text("# TYPE hb_requests counter …"))], errors: [404],
            description: "Requests, latency and errors by route template (hb_*, http_server_*), store write and read latency (reprise_store_*) and the write queue's depth.")
        add("get", "/version", tag: "meta", "The MLflow version this server reports, as text", ok: [("200", R.text("A version string such as 3.17.2"))])
        add("get", "/api/3.0/mlflow/server-info", tag: "meta", "Server capabilities", ok: [("200", R.json(S.ref("ServerInfo"), "Capabilities"))])
    }

    // MARK: Experiments

    mutating func experiments() {
        let base = "/api/2.0/mlflow/experiments"
        add(
            "post", "\(base)/create", tag: "experiments", "Create an experiment",
            body: P.json(S.object(
                [
                    ("name", S.experimentName),
                    ("artifact_location", S.string("Where its runs' artifacts go; a relative path is resolved against the server's directory; empty: the default.", pattern: S.printableOrEmpty)),
                    ("tags", S.tags),
                ], required: ["name"])),
            ok: [("200", R.json(S.object([("experiment_id", S.string)], required: ["experiment_id"]), "{experiment_id}"))],
            errors: [400], description: "A duplicate name (deleted experiments included) is 400 RESOURCE_ALREADY_EXISTS.")
        add(
            "get", "\(base)/get", tag: "experiments", "Get an experiment (active or deleted) by id",
            params: [P.query("experiment_id", S.experimentID, required: true)],
            ok: [("200", R.json(S.object([("experiment", S.ref("Experiment"))]), "{experiment}"))], errors: [400, 404])
        add(
            "get", "\(base)/get-by-name", tag: "experiments", "Get an experiment (active or deleted) by name",
            params: [P.query("experiment_name", S.experimentName, required: true)],
            ok: [("200", R.json(S.object([("experiment", S.ref("Experiment"))]), "{experiment}"))], errors: [400, 404])
        let searchFields: [(String, J)] = [
            ("max_results", S.described(S.int(1, 50000, format: "int64"), "Required by the server (the client always sends it).")),
            ("filter", S.filter("experiment")),
            ("order_by", S.array(S.orderBy("experiment"))),
            ("view_type", S.enumeration(["ACTIVE_ONLY", "DELETED_ONLY", "ALL"])),
            ("page_token", S.pageToken()),
        ]
        let searchOK: [(String, J)] = [(
            "200",
            R.json(S.object([("experiments", S.array(S.ref("Experiment"))), ("next_page_token", S.string)]), "{experiments?, next_page_token?}")
        )]
        add(
            "post", "\(base)/search", tag: "experiments", "Search experiments", body: P.json(S.object(searchFields, required: ["max_results"])),
            ok: searchOK, errors: [400])
        add(
            "get", "\(base)/search", tag: "experiments", "Search experiments (query parameters)",
            params: searchFields.map { P.query($0.0, $0.1, required: $0.0 == "max_results") }, ok: searchOK, errors: [400])
        let idOnly = P.json(S.object([("experiment_id", S.experimentID)], required: ["experiment_id"]))
        add("post", "\(base)/delete", tag: "experiments", "Delete an experiment and its runs (soft)", body: idOnly, ok: [("200", R.empty)], errors: [400, 404])
        add("post", "\(base)/restore", tag: "experiments", "Restore a deleted experiment and its runs", body: idOnly, ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/update", tag: "experiments", "Rename an experiment",
            body: P.json(S.object([("experiment_id", S.experimentID), ("new_name", S.experimentName)], required: ["experiment_id", "new_name"])),
            ok: [("200", R.empty)], errors: [400, 404],
            description: "Renaming a deleted experiment is 400 INVALID_STATE (MLflow answers 500).")
        add(
            "post", "\(base)/set-experiment-tag", tag: "experiments", "Set an experiment tag",
            body: P.json(S.object(
                [("experiment_id", S.experimentID), ("key", S.key), ("value", S.string("At most 20000 characters.", maxLength: 20000))],
                required: ["experiment_id", "key"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/delete-experiment-tag", tag: "experiments", "Delete an experiment tag",
            body: P.json(S.object([("experiment_id", S.experimentID), ("key", S.nonEmpty)], required: ["experiment_id", "key"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/search-datasets", tag: "experiments", "The datasets used by runs of these experiments (UI)",
            body: P.json(S.object([("experiment_ids", S.array(S.experimentIDItem))])),
            ok: [("200", R.json(S.object([("dataset_summaries", S.array(S.ref("DatasetSummary")))]), "{dataset_summaries?}"))],
            errors: [400])
    }

    // MARK: Runs

    mutating func runs() {
        let base = "/api/2.0/mlflow"
        // run_uuid, the legacy name of run_id, is accepted wherever run_id is (and used when run_id is empty).
        let runIDFields: [(String, J)] = [("run_id", S.runID)]
        let runOnly = P.json(S.object(runIDFields, required: ["run_id"]))
        add(
            "post", "\(base)/runs/create", tag: "runs", "Create a run",
            body: P.json(S.object([
                ("experiment_id", S.string("The experiment (an integer as a string); empty or absent: 0.", pattern: "^([0-9]{1,18})?$")), ("user_id", S.string),
                ("run_name", S.string("The run's name (else the mlflow.runName tag, else a random one).", pattern: S.printableOrEmpty)),
                ("start_time", S.described(S.int64, "Milliseconds since the epoch.")), ("tags", S.tags),
            ])),
            ok: [("200", R.json(S.object([("run", S.ref("Run"))]), "{run}"))], errors: [400, 404],
            description: "A strict experiment policy refuses runs that miss required passport fields (400).")
        add(
            "post", "\(base)/runs/update", tag: "runs", "Update a run's status, end time or name",
            body: P.json(S.object(runIDFields + [
                ("status", S.enumeration(["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"])),
                ("end_time", S.int64), ("run_name", S.string("A new name.", pattern: S.printable)),
            ], required: ["run_id"])),
            ok: [("200", R.json(S.object([("run_info", S.ref("RunInfo"))]), "{run_info}"))], errors: [400, 403, 404])
        add("post", "\(base)/runs/delete", tag: "runs", "Delete a run (soft)", body: runOnly, ok: [("200", R.empty)], errors: [400, 403, 404])
        add("post", "\(base)/runs/restore", tag: "runs", "Restore a deleted run", body: runOnly, ok: [("200", R.empty)], errors: [400, 404])
        add(
            "get", "\(base)/runs/get", tag: "runs", "Get a run (active or deleted)",
            params: [P.query("run_id", S.runID, required: true)],
            ok: [("200", R.json(S.object([("run", S.ref("Run"))]), "{run}"))], errors: [400, 404])
        add(
            "post", "\(base)/runs/log-metric", tag: "runs", "Log one metric point",
            body: P.json(S.object(runIDFields + [
                ("key", S.key), ("value", S.double), ("timestamp", S.described(S.nonNegativeInt64, "Milliseconds since the epoch.")),
                ("step", S.int64), ("model_id", S.string), ("dataset_name", S.string), ("dataset_digest", S.string),
            ], required: ["run_id", "key", "value", "timestamp"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/log-parameter", tag: "runs", "Log a param (immutable once logged)",
            body: P.json(S.object(runIDFields + [("key", S.key), ("value", S.string("At most 6000 characters are kept."))], required: ["run_id", "key", "value"])),
            ok: [("200", R.empty)], errors: [400, 403, 404], description: "Logging another value for a logged key is 400.")
        add(
            "post", "\(base)/runs/set-tag", tag: "runs", "Set a run tag",
            body: P.json(S.object(runIDFields + [("key", S.key), ("value", S.string)], required: ["run_id", "key"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/delete-tag", tag: "runs", "Delete a run tag",
            body: P.json(S.object(runIDFields + [("key", S.nonEmpty)], required: ["run_id", "key"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/log-batch", tag: "runs", "Log metrics, params and tags at once (all or nothing)",
            body: P.json(S.object([
                ("run_id", S.checkedRunID),
                ("metrics", S.array(S.ref("MetricInput"), maxItems: 1000)),
                ("params", S.withUnique(S.array(S.ref("Param"), maxItems: 100, "Keys must be unique within the request."))),
                ("tags", S.array(S.ref("TagInput"), maxItems: 100)),
            ], required: ["run_id"], "At most 1000 metrics, params and tags together.")),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/log-inputs", tag: "runs", "Log dataset and model inputs",
            body: P.json(S.object([
                ("run_id", S.checkedRunID),
                ("datasets", S.array(S.ref("DatasetInputRequest"))),
                ("models", S.array(S.object([("model_id", S.nonEmpty)], required: ["model_id"]))),
            ], required: ["run_id"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/outputs", tag: "runs", "Record logged models a run produced",
            body: P.json(S.object(runIDFields + [
                ("models", S.array(S.object([("model_id", S.nonEmpty), ("step", S.int64)], required: ["model_id", "step"]), minItems: 1)),
            ], required: ["run_id", "models"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/log-model", tag: "runs", "Legacy: append a model's metadata to the run's mlflow.log-model.history tag",
            body: P.json(S.object(runIDFields + [
                ("model_json", S.string(
                    "The MLmodel as JSON text, with at least artifact_path, flavors, utc_time_created and run_id.", minLength: 1,
                    format: "mlflow-model-json")),
            ], required: ["run_id", "model_json"])),
            ok: [("200", R.empty)], errors: [400, 403, 404])
        add(
            "post", "\(base)/runs/search", tag: "runs", "Search runs",
            body: P.json(S.object([
                ("experiment_ids", S.array(S.experimentIDItem, "No ids: an empty result.")),
                ("filter", S.filter("run")),
                ("run_view_type", S.enumeration(["ACTIVE_ONLY", "DELETED_ONLY", "ALL"])),
                ("max_results", S.described(S.int(1, 50000), "Default 1000.")),
                ("order_by", S.array(S.orderBy("run"))),
                ("page_token", S.pageToken()),
            ])),
            ok: [("200", R.json(S.object([("runs", S.array(S.ref("Run"))), ("next_page_token", S.string)]), "{runs?, next_page_token?}"))],
            errors: [400])
        let metrics = R.json(S.object([("metrics", S.array(S.ref("Metric"))), ("next_page_token", S.string)]), "{metrics?, next_page_token?}")
        add(
            "get", "\(base)/metrics/get-history", tag: "runs", "A metric's history, ordered by (timestamp, step, value)",
            params: [
                P.query("run_id", S.runID, required: true),
                P.query("metric_key", S.nonEmpty, required: true), P.query("max_results", S.int(1, Int64(Int32.max))),
                P.query("page_token", S.pageToken()),
            ],
            ok: [("200", metrics)], errors: [400, 404])
        add(
            "get", "\(base)/metrics/get-history-bulk-interval", tag: "runs", "Sampled histories of one metric for several runs (UI)",
            params: [
                P.query("run_ids", S.array(S.runID, minItems: 1, maxItems: 100), required: true),
                P.query("metric_key", S.nonEmpty, required: true),
                P.query("start_step", S.described(S.int64, "Give both start_step and end_step, or neither.")),
                P.query("end_step", S.described(S.int64, "At least start_step.")),
                P.query("max_results", S.int(1, 2500)),
            ],
            ok: [("200", metrics)], errors: [400])
        add(
            "get", "\(base)/metrics/get-history-bulk", tag: "runs", "Histories of one metric for several runs (UI)",
            params: [
                P.query("run_id", S.array(S.runID, minItems: 1, maxItems: 100), required: true),
                P.query("metric_key", S.nonEmpty, required: true),
                P.query("max_results", S.described(S.int(1, Int64(Int32.max)), "At most 25000 points are returned.")),
            ],
            ok: [("200", metrics)], errors: [400])
        let presigned = P.json(S.object([
            ("run_id", S.string), ("path", S.string), ("expiration", S.int64), ("model_id", S.string),
        ]))
        add(
            "post", "\(base)/artifacts/presigned-upload-url", tag: "artifacts", "Presigned upload URL (not supported: 501)",
            body: presigned, ok: [], errors: [501])
        add(
            "post", "\(base)/artifacts/presigned-download-url", tag: "artifacts", "Presigned download URL (not supported: 501)",
            body: presigned, ok: [], errors: [501])
    }

    // MARK: Artifacts

    mutating func artifacts() {
        let proxy = "/api/2.0/mlflow-artifacts/artifacts"
        let off = "503 when the server runs with --no-serve-artifacts."
        add(
            "put", "\(proxy)/{artifact_path}", tag: "artifacts", "Upload a file (the raw body) through the artifact proxy",
            body: P.binary, ok: [("200", R.empty)], errors: [400, 503],
            description: "Writes or overwrites the file, creating parent directories. Larger than --max-artifact-bytes: 400. \(off)")
        add(
            "get", "\(proxy)/{artifact_path}", tag: "artifacts", "Download a file through the artifact proxy",
            ok: [("200", R.file)], errors: [400, 404, 503], description: "A directory is 400. \(off)")
        add(
            "delete", "\(proxy)/{artifact_path}", tag: "artifacts", "Delete a file or a directory (recursively)",
            ok: [("200", R.empty)], errors: [400, 404, 503], description: off)
        add(
            "get", proxy, tag: "artifacts", "List a directory of the artifact store (immediate children)",
            params: [P.query("path", S.artifactPath(file: false))],
            ok: [("200", R.json(S.object([("files", S.array(S.ref("FileInfo")))]), "{files?}: a missing directory or a file lists as {}"))],
            errors: [400, 503], description: off)
        let mpu = "/api/2.0/mlflow-artifacts/mpu"
        let s3Only = "Only with an s3:// --artifacts-destination; otherwise 501 'Multipart upload is not supported for the current artifact repository', and the mlflow client falls back to one PUT. The object is <artifact_path>/<basename of path>. \(off)"
        let localFile = S.string("The client's local file; only its last component (the file name) is used.", minLength: 1)
        add(
            "post", "\(mpu)/create/{artifact_path}", tag: "artifacts", "Start a multipart upload: one presigned PUT URL per part",
            body: P.json(S.object([("path", localFile), ("num_parts", S.int(1, 10_000))], required: ["path", "num_parts"])),
            ok: [(
                "200",
                R.json(
                    S.object([
                        ("upload_id", S.string),
                        ("credentials", S.array(S.object([("url", S.string), ("part_number", S.int(1, 10_000)), ("headers", ["type": "object"])]))),
                    ]), "{upload_id, credentials}: PUT each part to its url (valid for an hour) and keep the ETag answered")
            )],
            errors: [400, 403, 501, 503], description: s3Only)
        add(
            "post", "\(mpu)/complete/{artifact_path}", tag: "artifacts", "Complete a multipart upload from its parts",
            body: P.json(S.object([
                ("path", localFile), ("upload_id", S.nonEmpty),
                ("parts", S.array(S.object([("part_number", S.int(1, 10_000)), ("etag", S.nonEmpty), ("url", S.string)], required: ["part_number", "etag"]), minItems: 1, maxItems: 10_000)),
            ], required: ["path", "upload_id", "parts"])),
            ok: [("200", R.empty)], errors: [400, 403, 404, 501, 503],
            description: "Parts in ascending order. The file's size is recorded for `reprise artifacts verify`; its bytes went straight to the bucket, so no SHA-256 is. \(s3Only)")
        add(
            "post", "\(mpu)/abort/{artifact_path}", tag: "artifacts", "Abort a multipart upload",
            body: P.json(S.object([("path", localFile), ("upload_id", S.nonEmpty)], required: ["path", "upload_id"])),
            ok: [("200", R.empty)], errors: [400, 404, 501, 503], description: s3Only)
        add(
            "get", "\(RepriseAPI.extensionPrefix)/artifact-digests", tag: "artifacts",
            "What the server recorded for each of a run's artifacts as it was stored (size, SHA-256)",
            params: [P.query("run_id", S.runID, required: true)],
            ok: [(
                "200",
                R.json(
                    S.object([
                        ("root_uri", S.string),
                        ("files", S.array(S.object([
                            ("path", S.string), ("location", S.string), ("size", S.nonNegativeInt64),
                            ("sha256", S.string("Lowercase hex; absent for a multipart upload (its bytes never passed through the server).", pattern: "^[0-9a-f]{64}$")),
                            ("recorded_time", S.int64), ("method", S.enumeration(["put", "upload", "multipart"])),
                        ], required: ["path", "location", "size", "recorded_time", "method"]))),
                    ], required: ["root_uri", "files"]), "{root_uri, files}")
            )],
            errors: [400, 404],
            description: "Recorded for uploads through the artifact proxy (PUT), upload-artifact and multipart uploads; `reprise artifacts verify RUN_ID` compares them with the files.")
        add(
            "get", "/api/2.0/mlflow-artifacts/presigned/{artifact_path}", tag: "artifacts", "Multipart download (not supported: 501)",
            ok: [], errors: [400, 501, 503])
        let notServed = "501 when the run's artifact location is not served by this server (for example s3://...). \(off)"
        add(
            "get", "/api/2.0/mlflow/artifacts/list", tag: "artifacts", "List a run's artifacts",
            params: [
                P.query("run_id", S.runID, required: true),
                P.query("path", S.artifactPath(file: false)), P.query("page_token", S.string),
            ],
            ok: [(
                "200",
                R.json(S.object([("root_uri", S.string), ("files", S.array(S.ref("FileInfo")))], required: ["root_uri"]), "{root_uri, files?}")
            )],
            errors: [400, 404, 501, 503], description: notServed)
        add(
            "get", "/get-artifact", tag: "artifacts", "Download a run artifact (path relative to the run's artifact root)",
            params: [
                P.query("run_id", S.runID, required: true),
                P.query("path", S.artifactPath(file: true), required: true),
            ],
            ok: [("200", R.file)], errors: [400, 404, 501, 503], description: notServed)
        add(
            "post", "/api/2.0/mlflow/upload-artifact", tag: "artifacts", "Upload a run artifact (the raw body, at most 10 MB)",
            params: [
                P.query("run_id", S.runID, required: true),
                P.query("path", S.artifactPath(file: true), required: true),
            ],
            body: P.binary, ok: [("200", R.empty)], errors: [400, 404, 501, 503], description: notServed)
        add(
            "get", "/model-versions/get-artifact", tag: "artifacts", "Download a file of a model version",
            params: [
                P.query("name", S.modelName, required: true), P.query("version", S.version, required: true),
                P.query("path", S.artifactPath(file: true), required: true),
            ],
            ok: [("200", R.file)], errors: [400, 404, 501, 503], description: notServed)
    }

    // MARK: Traces

    mutating func traces() {
        let v3 = "/api/3.0/mlflow/traces"
        let info = S.ref("TraceInfoV3")
        let locations = S.array(S.object([
            ("type", S.enumeration(["MLFLOW_EXPERIMENT"])), ("mlflow_experiment", S.object([("experiment_id", S.experimentID)])),
        ]))
        add(
            "post", "/v1/traces", tag: "traces", "OTLP/HTTP trace export: store spans",
            params: [[
                "name": "x-mlflow-experiment-id", "in": "header", "required": true, "schema": S.experimentID,
                "description": "The experiment the traces belong to.",
            ]],
            body: [
                "required": true,
                "content": [
                    "application/x-protobuf": ["schema": ["type": "string", "format": "binary", "description": "An OTLP ExportTraceServiceRequest."]],
                    "application/json": ["schema": ["type": "object", "description": "An OTLP ExportTraceServiceRequest in OTLP/JSON (ids in hex)."]],
                ],
            ],
            ok: [("200", [
                "description": "An ExportTraceServiceResponse, in the request's encoding.",
                "content": ["application/x-protobuf": ["schema": ["type": "string", "format": "binary"]], "application/json": ["schema": ["type": "object"]]],
            ])],
            errors: [400, 404], description: "Spans of one or more traces. A trace not yet started (StartTraceV3) is created from its spans.")
        add(
            "post", v3, tag: "traces", "Record a trace's info (StartTraceV3, sent when the trace ends)",
            body: P.json(S.object([("trace", S.object([("trace_info", info)], required: ["trace_info"]))], required: ["trace"])),
            ok: [("200", R.json(S.object([("trace", S.object([("trace_info", info)]))]), "{trace: {trace_info}}"))], errors: [400, 404])
        add(
            "get", "\(v3)/{trace_id}", tag: "traces", "Get a trace's info",
            ok: [("200", R.json(S.object([("trace", S.object([("trace_info", info)]))]), "{trace: {trace_info}}"))], errors: [404])
        add(
            "get", "\(v3)/get", tag: "traces", "Get a trace with its spans",
            params: [P.query("trace_id", S.string, required: true), P.query("allow_partial", S.boolean)],
            ok: [("200", R.json(S.object([("trace", S.ref("Trace"))]), "{trace: {trace_info, spans}}"))], errors: [400, 404])
        add(
            "get", "\(v3)/batchGet", tag: "traces", "Get several traces with their spans",
            params: [P.query("trace_ids", S.array(S.string))],
            ok: [("200", R.json(S.object([("traces", S.array(S.ref("Trace")))]), "{traces}"))], errors: [400])
        add(
            "post", "\(v3)/batchGetInfos", tag: "traces", "Get several traces' infos",
            body: P.json(S.object([("trace_ids", S.array(S.string)), ("experiment_ids", S.array(S.experimentIDItem))])),
            ok: [("200", R.json(S.object([("trace_infos", S.array(info))]), "{trace_infos}"))], errors: [400])
        add(
            "post", "\(v3)/search", tag: "traces", "Search traces",
            body: P.json(S.object([
                ("locations", locations), ("filter", S.filter("trace")), ("max_results", S.described(S.int(1, 50000), "Default 100.")),
                ("order_by", S.array(S.orderBy("trace"))), ("page_token", S.pageToken()),
            ])),
            ok: [("200", R.json(S.object([("traces", S.array(info)), ("next_page_token", S.string)]), "{traces, next_page_token?}"))],
            errors: [400, 403])
        for base in ["/api/2.0/mlflow/traces", v3] {
            add(
                "patch", "\(base)/{trace_id}/tags", tag: "traces", "Set a trace tag",
                body: P.json(S.object([("key", S.string), ("value", S.string)], required: ["key"])), ok: [("200", R.empty)], errors: [400, 404])
            add(
                "delete", "\(base)/{trace_id}/tags", tag: "traces", "Delete a trace tag",
                body: P.json(S.object([("key", S.string)], required: ["key"])), ok: [("200", R.empty)], errors: [400, 404])
            add(
                "post", "\(base)/delete-traces", tag: "traces", "Delete traces by id, or by age",
                body: P.json(S.object([
                    ("experiment_id", S.experimentID), ("max_timestamp_millis", S.int(0, Int64.max, format: "int64")),
                    ("max_traces", S.int(1, Int64(Int32.max))), ("request_ids", S.array(S.string)),
                ], required: ["experiment_id"])),
                ok: [("200", R.json(S.object([("traces_deleted", S.int(0, Int64(Int32.max)))]), "{traces_deleted}"))], errors: [400, 404])
        }
        let metricViews = S.enumeration(["TRACES", "SPANS", "ASSESSMENTS"], "What the metric counts or measures: traces, spans or assessments.")
        add(
            "post", "\(v3)/metrics", tag: "traces", "Trace analytics: counts, latencies, tokens, costs and assessment values",
            body: P.json(S.object([
                ("experiment_ids", S.array(S.experimentIDItem)), ("view_type", metricViews),
                ("metric_name", S.described(S.string, "TRACES: trace_count, session_count, latency, input_tokens, output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens. SPANS: span_count, latency, input_cost, output_cost, total_cost. ASSESSMENTS: assessment_count, assessment_value.")),
                ("aggregations", S.array(S.object([
                    ("aggregation_type", S.enumeration(["COUNT", "SUM", "AVG", "PERCENTILE", "MIN", "MAX"])),
                    ("percentile_value", ["type": "number", "minimum": 0, "maximum": 100, "description": "PERCENTILE only."]),
                ], required: ["aggregation_type"]), minItems: 1)),
                ("dimensions", S.array(S.string, "Group by: trace_name, trace_status, span_name, span_type, span_status, span_model_name, span_model_provider, assessment_name, assessment_value (which apply depends on the metric).")),
                ("filters", S.array(S.string, "Each one comparison `<trace|span|assessment>.<entity>[.<key>] = '<value>'`; all must hold.")),
                ("time_interval_seconds", S.described(S.int(0, TraceMetricsQuery.maxIntervalSeconds, format: "int64"), "Bucket width; needs start_time_ms and end_time_ms.")),
                ("start_time_ms", S.int64), ("end_time_ms", S.int64),
                ("max_results", S.described(S.int(1, Int64(TraceMetricsQuery.maxMaxResults)), "Default 1000.")), ("page_token", S.pageToken()),
            ], required: ["view_type", "metric_name", "aggregations"])),
            ok: [("200", R.json(S.object([
                ("data_points", S.array(S.object([
                    ("metric_name", S.string), ("dimensions", S.described(S.object([]), "Dimension name to value; time_bucket when bucketed.")),
                    ("values", S.described(S.object([]), "Aggregation label (COUNT, AVG, P50.0, …) to number.")),
                ]))), ("next_page_token", S.string),
            ]), "{data_points?, next_page_token?}"))], errors: [400, 403])
        add(
            "post", "\(v3)/calculate-filter-correlation", tag: "traces", "How two trace filters co-occur (NPMI)",
            body: P.json(S.object([
                ("experiment_ids", S.array(S.experimentIDItem)), ("filter_string1", S.filter("trace")), ("filter_string2", S.filter("trace")),
                ("base_filter", S.filter("trace")),
            ], required: ["filter_string1", "filter_string2"])),
            ok: [("200", R.json(S.object([
                ("npmi", S.described(S.double, "Absent when either filter matches no trace.")), ("npmi_smoothed", S.double),
                ("filter1_count", S.int(0, Int64.max, format: "int64")), ("filter2_count", S.int(0, Int64.max, format: "int64")),
                ("joint_count", S.int(0, Int64.max, format: "int64")), ("total_count", S.int(0, Int64.max, format: "int64")),
            ]), "{npmi?, npmi_smoothed?, filter1_count, filter2_count, joint_count, total_count}"))], errors: [400, 403])
        add(
            "post", "/api/2.0/mlflow/traces/link-to-run", tag: "traces", "Link traces (at most 100) to a run",
            body: P.json(S.object([("trace_ids", S.array(S.string)), ("run_id", S.string)], required: ["run_id"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "/api/2.0/mlflow/traces/link-prompts", tag: "traces", "Link prompt versions to a trace (its mlflow.linkedPrompts tag)",
            body: P.json(S.object([
                ("trace_id", S.string), ("prompt_versions", S.array(S.object([("name", S.nonEmpty), ("version", S.version)], required: ["name", "version"]), maxItems: 100)),
            ], required: ["trace_id"])),
            ok: [("200", R.empty)], errors: [400, 404])
        let v2 = "/api/2.0/mlflow/traces"
        let v2Info = R.json(S.object([("trace_info", S.ref("TraceInfoV2"))]), "{trace_info}")
        add(
            "post", v2, tag: "traces", "Start a trace (v2, for older clients)",
            body: P.json(S.object([
                ("experiment_id", S.experimentID), ("timestamp_ms", S.int(0, Int64.max, format: "int64")),
                ("request_metadata", S.array(S.ref("TagInput"))), ("tags", S.array(S.ref("TagInput"))),
            ], required: ["experiment_id"])),
            ok: [("200", v2Info)], errors: [400, 404])
        add(
            "patch", "\(v2)/{trace_id}", tag: "traces", "End a trace (v2)",
            body: P.json(S.object([
                ("timestamp_ms", S.int(0, Int64.max, format: "int64")), ("status", S.enumeration(TraceState.allCases.map(\.rawValue))),
                ("request_metadata", S.array(S.ref("TagInput"))), ("tags", S.array(S.ref("TagInput"))),
            ])),
            ok: [("200", v2Info)], errors: [400, 404])
        add("get", "\(v2)/{trace_id}/info", tag: "traces", "A trace's info (v2)", ok: [("200", v2Info)], errors: [404])
        add(
            "get", v2, tag: "traces", "Search traces (v2)",
            params: [P.query("experiment_ids", S.array(S.experimentIDItem), required: true), P.query("filter", S.filter("trace")),
                     P.query("max_results", S.int(1, 50000)), P.query("order_by", S.array(S.orderBy("trace"))), P.query("page_token", S.pageToken())],
            ok: [("200", R.json(S.object([("traces", S.array(S.ref("TraceInfoV2"))), ("next_page_token", S.string)]), "{traces, next_page_token?}"))],
            errors: [400, 403])
        add(
            "get", "/api/2.0/mlflow/get-trace-artifact", tag: "traces", "A trace's spans as MLflow's traces.json (the UI's download)",
            params: [P.query("request_id", S.string, required: true)],
            ok: [("200", ["description": "{spans: [MLflow span dict]}", "content": ["text/plain": ["schema": S.string]]])], errors: [400, 404])
        let assessment = R.json(S.object([("assessment", S.ref("Assessment"))]), "{assessment}")
        add(
            "post", "\(v3)/{trace_id}/assessments", tag: "traces", "Add feedback or an expectation to a trace",
            body: P.json(S.object([("assessment", S.ref("Assessment"))], required: ["assessment"])), ok: [("200", assessment)], errors: [400, 404])
        add("get", "\(v3)/{trace_id}/assessments/{assessment_id}", tag: "traces", "Get an assessment", ok: [("200", assessment)], errors: [404])
        add(
            "patch", "\(v3)/{trace_id}/assessments/{assessment_id}", tag: "traces", "Update an assessment",
            body: P.json(S.object([("assessment", S.ref("Assessment")), ("update_mask", S.string)], required: ["assessment"])),
            ok: [("200", assessment)], errors: [400, 404])
        add(
            "delete", "\(v3)/{trace_id}/assessments/{assessment_id}", tag: "traces", "Delete an assessment",
            ok: [("200", R.empty)], errors: [404])
    }

    // MARK: Evaluation datasets and scorers

    mutating func evaluation() {
        let base = "/api/3.0/mlflow/datasets"
        let ds = "\(base)/{dataset_id}"
        let one = R.json(S.object([("dataset", S.ref("EvaluationDataset"))]), "{dataset}")
        let tagsJSON = S.string("Tags: a JSON object of strings, itself sent as a string.")
        add(
            "post", "\(base)/create", tag: "evaluation", "Create an evaluation dataset",
            body: P.json(S.object([
                ("name", S.string), ("experiment_ids", S.array(S.experimentIDItem)), ("tags", tagsJSON), ("created_by", S.string),
            ], required: ["name"])),
            ok: [("200", one)], errors: [400, 403, 404])
        let searchBody = S.object([
            ("experiment_ids", S.array(S.experimentIDItem)), ("filter_string", S.filter("dataset")), ("max_results", S.int(1, 50000)),
            ("order_by", S.array(S.orderBy("dataset"))), ("page_token", S.pageToken()),
        ])
        let found = R.json(S.object([("datasets", S.array(S.ref("EvaluationDataset"))), ("next_page_token", S.string)]), "{datasets?, next_page_token?}")
        add("post", "\(base)/search", tag: "evaluation", "Search evaluation datasets", body: P.json(searchBody), ok: [("200", found)], errors: [400, 403])
        add(
            "get", "\(base)/search", tag: "evaluation", "Search evaluation datasets",
            params: [P.query("experiment_ids", S.array(S.experimentIDItem)), P.query("filter_string", S.filter("dataset")), P.query("max_results", S.int(1, 50000)), P.query("page_token", S.pageToken())],
            ok: [("200", found)], errors: [400, 403])
        add("get", ds, tag: "evaluation", "Get an evaluation dataset", ok: [("200", one)], errors: [404])
        add("delete", ds, tag: "evaluation", "Delete an evaluation dataset and its records", ok: [("200", R.empty)], errors: [404])
        add(
            "patch", "\(ds)/tags", tag: "evaluation", "Set dataset tags",
            body: P.json(S.object([("tags", tagsJSON)], required: ["tags"])), ok: [("200", R.empty)], errors: [400, 404])
        add("delete", "\(ds)/tags/{key}", tag: "evaluation", "Delete a dataset tag", ok: [("200", R.empty)], errors: [404])
        add(
            "post", "\(ds)/records", tag: "evaluation", "Merge records (a record with the inputs of a stored one updates it)",
            body: P.json(S.object([("records", S.string("A JSON list of records {inputs, outputs?, expectations?, tags?, source?}, sent as a string."))], required: ["records"])),
            ok: [("200", R.json(S.object([("inserted_count", S.int(0, Int64(Int32.max))), ("updated_count", S.int(0, Int64(Int32.max)))]), "{inserted_count, updated_count}"))],
            errors: [400, 404])
        add(
            "get", "\(ds)/records", tag: "evaluation", "Read records, oldest first",
            params: [P.query("max_results", S.int(1, 10000)), P.query("page_token", S.pageToken())],
            ok: [("200", R.json(S.object([("records", S.string("A JSON list of records, as a string.")), ("next_page_token", S.string)]), "{records, next_page_token?}"))],
            errors: [400, 404])
        add(
            "delete", "\(ds)/records", tag: "evaluation", "Delete records",
            body: P.json(S.object([("dataset_record_ids", S.array(S.string))])),
            ok: [("200", R.json(S.object([("deleted_count", S.int(0, Int64(Int32.max)))]), "{deleted_count}"))], errors: [400, 404])
        add(
            "get", "\(ds)/experiment-ids", tag: "evaluation", "The experiments a dataset is linked to",
            ok: [("200", R.json(S.object([("experiment_ids", S.array(S.string))]), "{experiment_ids?}"))], errors: [404])
        for (suffix, what) in [("add-experiments", "Link a dataset to experiments"), ("remove-experiments", "Unlink a dataset from experiments")] {
            add(
                "post", "\(ds)/\(suffix)", tag: "evaluation", what,
                body: P.json(S.object([("dataset_id", S.string), ("experiment_ids", S.array(S.experimentIDItem))])),
                ok: [("200", one)], errors: [400, 403, 404])
        }
        let scorers = "/api/3.0/mlflow/scorers"
        let scorer = S.ref("Scorer")
        add(
            "post", "\(scorers)/register", tag: "evaluation", "Register a scorer version (stored verbatim; never run by the server)",
            body: P.json(S.object([("experiment_id", S.experimentID), ("name", S.string), ("serialized_scorer", S.string)], required: ["experiment_id", "name", "serialized_scorer"])),
            ok: [("200", R.json(S.object([
                ("version", S.int(1, Int64.max, format: "int64")), ("scorer_id", S.string), ("experiment_id", S.string), ("name", S.string),
                ("serialized_scorer", S.string), ("creation_time", S.int(0, Int64.max, format: "int64")),
            ]), "The new version"))],
            errors: [400, 404])
        add(
            "get", "\(scorers)/list", tag: "evaluation", "The latest version of each scorer of an experiment",
            params: [P.query("experiment_id", S.experimentID, required: true)],
            ok: [("200", R.json(S.object([("scorers", S.array(scorer))]), "{scorers?}"))], errors: [400, 404])
        add(
            "get", "\(scorers)/versions", tag: "evaluation", "Every version of a scorer",
            params: [P.query("experiment_id", S.experimentID, required: true), P.query("name", S.string, required: true)],
            ok: [("200", R.json(S.object([("scorers", S.array(scorer))]), "{scorers}"))], errors: [400, 404])
        add(
            "get", "\(scorers)/get", tag: "evaluation", "A scorer version (the latest by default)",
            params: [P.query("experiment_id", S.experimentID, required: true), P.query("name", S.string, required: true), P.query("version", S.int(1, Int64.max, format: "int64"))],
            ok: [("200", R.json(S.object([("scorer", scorer)]), "{scorer}"))], errors: [400, 404])
        add(
            "delete", "\(scorers)/delete", tag: "evaluation", "Delete a scorer version, or all of them",
            body: P.json(S.object([("experiment_id", S.experimentID), ("name", S.string), ("version", S.int(1, Int64.max, format: "int64"))], required: ["experiment_id", "name"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "get", "\(scorers)/online-configs", tag: "evaluation", "Online scoring configurations (none: the server does not run scorers)",
            params: [P.query("scorer_ids", S.array(S.string))],
            ok: [("200", R.json(S.object([("configs", S.array(["type": "object"]))]), "{configs: []}"))])
    }

    // MARK: Deployments and incidents

    mutating func deployments() {
        let p = RepriseAPI.extensionPrefix
        let one = R.json(S.object([("deployment", S.ref("Deployment"))]), "{deployment}")
        let incident = R.json(S.object([("incident", S.ref("Incident"))]), "{incident}")
        let ref = S.string("NAME@ALIAS or NAME/VERSION", minLength: 1)
        add(
            "post", "\(p)/deployments", tag: "deployments", "Record a deployment, resolving the model and prompts to exact versions now",
            body: P.json(S.object([
                ("environment", S.string("letters, digits, '-', '_', '.'", minLength: 1, maxLength: 100)), ("model", ref), ("prompts", S.array(ref)),
                ("endpoint", S.string), ("config", S.described(S.string, "The configuration deployed with it (text, at most 1 MB); stored with its SHA-256.")),
                ("note", S.string),
            ], required: ["environment", "model"])),
            ok: [("200", one)], errors: [400, 404])
        add(
            "get", "\(p)/deployments", tag: "deployments", "Deployments, newest first",
            params: [P.query("environment", S.string), P.query("max_results", S.int(1, 1000)), P.query("page_token", S.pageToken())],
            ok: [("200", R.json(S.object([("deployments", S.array(S.ref("Deployment"))), ("next_page_token", S.string)]), "{deployments, next_page_token?}"))],
            errors: [400])
        add(
            "get", "\(p)/deployments/current", tag: "deployments", "An environment's current deployment and the one a rollback returns to",
            params: [P.query("environment", S.string, required: true)],
            ok: [("200", R.json(S.object([("deployment", S.ref("Deployment")), ("previous", S.ref("Deployment"))]), "{deployment, previous?}"))],
            errors: [400, 404])
        add("get", "\(p)/deployments/{deployment_id}", tag: "deployments", "A deployment", ok: [("200", one)], errors: [404])
        add(
            "post", "\(p)/deployments/{deployment_id}/measurements", tag: "deployments", "Log production measurements against a deployment",
            body: P.json(S.object([("measurements", S.array(S.object(
                [("key", S.string), ("value", ["type": "number"]), ("timestamp", S.int(0, Int64.max, format: "int64"))], required: ["key", "value"])))])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "get", "\(p)/deployments/{deployment_id}/measurements", tag: "deployments", "A deployment's measurements",
            params: [P.query("key", S.string), P.query("max_results", S.int(1, 100_000))],
            ok: [("200", R.json(S.object([("measurements", S.array(S.object([("key", S.string), ("value", ["type": "number"]), ("timestamp", S.int64)])))]), "{measurements}"))],
            errors: [400, 404])
        add(
            "post", "\(p)/incidents", tag: "deployments", "Open an incident against a deployment",
            body: P.json(S.object([("deployment_id", S.string), ("note", S.string("What happened.", minLength: 1))], required: ["deployment_id", "note"])),
            ok: [("200", incident)], errors: [400, 404])
        add(
            "get", "\(p)/incidents", tag: "deployments", "Incidents, newest first",
            params: [P.query("deployment_id", S.string), P.query("environment", S.string), P.query("status", S.enumeration(["open", "closed"])),
                     P.query("max_results", S.int(1, 1000))],
            ok: [("200", R.json(S.object([("incidents", S.array(S.ref("Incident")))]), "{incidents}"))], errors: [400])
        add(
            "get", "\(p)/incidents/{incident_id}", tag: "deployments", "An incident and its deployment",
            ok: [("200", R.json(S.object([("incident", S.ref("Incident")), ("deployment", S.ref("Deployment"))]), "{incident, deployment}"))], errors: [404])
        add(
            "post", "\(p)/incidents/{incident_id}/close", tag: "deployments", "Close an incident",
            body: P.json(S.object([("resolution", S.string("How it was resolved.", minLength: 1))], required: ["resolution"])),
            ok: [("200", incident)], errors: [400, 404])
    }

    // MARK: Logged models

    mutating func loggedModels() {
        let base = "/api/2.0/mlflow/logged-models"
        let model = R.json(S.object([("model", S.ref("LoggedModel"))]), "{model}")
        add(
            "post", base, tag: "logged-models", "Create a logged model (status LOGGED_MODEL_PENDING)",
            body: P.json(S.object([
                ("experiment_id", S.experimentID), ("name", S.loggedModelName), ("model_type", S.string),
                ("source_run_id", S.string), ("params", S.array(S.ref("Param"))), ("tags", S.tags),
            ], required: ["experiment_id"])),
            ok: [("200", model)], errors: [400, 404])
        add(
            "post", "\(base)/search", tag: "logged-models", "Search logged models",
            body: P.json(S.object([
                ("experiment_ids", S.array(S.experimentIDItem)),
                ("filter", S.filter("logged-model")),
                ("order_by", S.array(S.object(
                    [("field_name", S.string("A field: name, model_id, creation_timestamp, last_updated_timestamp, ... or metrics.<key>.", minLength: 1, format: "mlflow-order-by-logged-model-field")),
                     ("ascending", S.boolean), ("dataset_name", S.described([:], "Accepted and ignored.")),
                     ("dataset_digest", S.described([:], "Accepted and ignored."))],
                    required: ["field_name"]))),
                ("max_results", S.described(S.int(1, 50000), "Default 50.")),
                ("page_token", S.pageToken()),
                ("datasets", S.described(
                    S.array(S.object([("dataset_name", S.string), ("dataset_digest", S.string)], required: ["dataset_name"])),
                    "Only models with a metric logged on one of these datasets.")),
            ])),
            ok: [("200", R.json(S.object([("models", S.array(S.ref("LoggedModel"))), ("next_page_token", S.string)]), "{models?, next_page_token?}"))],
            errors: [400])
        add(
            "get", "\(base)/{model_id}", tag: "logged-models", "Get a logged model",
            params: [P.query("allow_deleted", S.described(S.boolean, "Also return a deleted model."))],
            ok: [("200", model)], errors: [400, 404])
        add(
            "patch", "\(base)/{model_id}", tag: "logged-models", "Finalize a logged model",
            body: P.json(S.object([
                ("model_id", S.string),
                ("status", S.enumeration(["LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"])),
            ], required: ["status"])),
            ok: [("200", model)], errors: [400, 404])
        add("delete", "\(base)/{model_id}", tag: "logged-models", "Delete a logged model (soft)", ok: [("200", R.empty)], errors: [400, 404])
        add(
            "patch", "\(base)/{model_id}/tags", tag: "logged-models", "Set logged model tags",
            body: P.json(S.object([("tags", S.array(S.ref("TagInput")))])), ok: [("200", R.empty)], errors: [400, 404])
        add("delete", "\(base)/{model_id}/tags/{tag_key}", tag: "logged-models", "Delete a logged model tag", ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/{model_id}/params", tag: "logged-models", "Log logged model params",
            body: P.json(S.object([("params", S.array(S.ref("Param")))])), ok: [("200", R.empty)], errors: [400, 404])
        add(
            "get", "\(base)/{model_id}/artifacts/directories", tag: "logged-models", "List a logged model's files",
            params: [P.query("artifact_directory_path", S.artifactPath(file: false))],
            ok: [(
                "200",
                R.json(S.object([("root_uri", S.string), ("files", S.array(S.ref("FileInfo")))], required: ["root_uri"]), "{root_uri, files?}")
            )],
            errors: [400, 404, 501, 503])
        add(
            "get", "\(base)/{model_id}/artifacts/files", tag: "logged-models", "Download a logged model's file",
            params: [P.query("artifact_file_path", S.artifactPath(file: true), required: true)],
            ok: [("200", R.file)], errors: [400, 404, 501, 503])
    }

    // MARK: Registry

    mutating func registry() {
        let base = "/api/2.0/mlflow"
        let registered = R.json(S.object([("registered_model", S.ref("RegisteredModel"))]), "{registered_model}")
        let version = R.json(S.object([("model_version", S.ref("ModelVersion"))]), "{model_version}")
        let nameOnly = S.object([("name", S.modelName)], required: ["name"])
        let nameVersion: [(String, J)] = [("name", S.modelName), ("version", S.version)]
        add(
            "post", "\(base)/registered-models/create", tag: "registry", "Create a registered model",
            body: P.json(S.object(
                [("name", S.modelName), ("tags", S.tags), ("description", S.string), ("deployment_job_id", S.described([:], "Accepted and ignored."))], required: ["name"])),
            ok: [("200", registered)], errors: [400], description: "A duplicate name is 400 RESOURCE_ALREADY_EXISTS.")
        add(
            "post", "\(base)/registered-models/rename", tag: "registry", "Rename a registered model (and its versions)",
            body: P.json(S.object([("name", S.modelName), ("new_name", S.modelName)], required: ["name", "new_name"])),
            ok: [("200", registered)], errors: [400, 403, 404])
        add(
            "patch", "\(base)/registered-models/update", tag: "registry", "Update a registered model's description",
            body: P.json(S.object([("name", S.modelName), ("description", S.string)], required: ["name"])),
            ok: [("200", registered)], errors: [400, 404])
        add(
            "delete", "\(base)/registered-models/delete", tag: "registry", "Delete a registered model with its versions",
            body: P.json(nameOnly), ok: [("200", R.empty)], errors: [400, 403, 404],
            description: "Refused (403) while a protected alias or an open approval request points into it.")
        add(
            "get", "\(base)/registered-models/get", tag: "registry", "Get a registered model",
            params: [P.query("name", S.modelName, required: true)], ok: [("200", registered)], errors: [400, 404])
        add(
            "get", "\(base)/registered-models/search", tag: "registry", "Search registered models",
            params: [
                P.query("filter", S.filter("registered-model")), P.query("max_results", S.described(S.int(1, 1000), "Default 100.")),
                P.query("order_by", S.array(S.orderBy("registered-model"))), P.query("page_token", S.pageToken()),
            ],
            ok: [(
                "200",
                R.json(S.object([("registered_models", S.array(S.ref("RegisteredModel"))), ("next_page_token", S.string)]), "{registered_models?, next_page_token?}")
            )],
            errors: [400])
        let latestOK: [(String, J)] = [("200", R.json(S.object([("model_versions", S.array(S.ref("ModelVersion")))]), "{model_versions?}"))]
        add(
            "post", "\(base)/registered-models/get-latest-versions", tag: "registry", "The latest version in each stage",
            body: P.json(S.object([("name", S.modelName), ("stages", S.array(S.stage))], required: ["name"])), ok: latestOK, errors: [400, 404])
        add(
            "get", "\(base)/registered-models/get-latest-versions", tag: "registry", "The latest version in each stage (query parameters)",
            params: [P.query("name", S.modelName, required: true), P.query("stages", S.array(S.stage))], ok: latestOK, errors: [400, 404])
        add(
            "post", "\(base)/registered-models/set-tag", tag: "registry", "Set a registered model tag",
            body: P.json(S.object(
                [("name", S.modelName), ("key", S.key), ("value", S.string("At most 100000 characters.", maxLength: 100_000))],
                required: ["name", "key"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "delete", "\(base)/registered-models/delete-tag", tag: "registry", "Delete a registered model tag",
            body: P.json(S.object([("name", S.modelName), ("key", S.nonEmpty)], required: ["name", "key"])), ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/model-versions/create", tag: "registry", "Create a model version (status READY)",
            body: P.json(S.object([
                ("name", S.modelName),
                ("source", S.string(
                    "Where the files are: models:/<model_id>, runs:/<run_id>/<path> (with that run_id), a remote URI, or a local path inside the run's artifact directory (with run_id).",
                    minLength: 1, format: "mlflow-model-version-source")),
                ("run_id", S.string), ("tags", S.tags), ("run_link", S.string), ("description", S.string), ("model_id", S.string),
            ], required: ["name", "source"])),
            ok: [("200", version)], errors: [400, 404])
        add(
            "patch", "\(base)/model-versions/update", tag: "registry", "Update a model version's description",
            body: P.json(S.object(nameVersion + [("description", S.string)], required: ["name", "version"])),
            ok: [("200", version)], errors: [400, 404])
        add(
            "post", "\(base)/model-versions/transition-stage", tag: "registry", "Move a model version to a stage (deprecated in MLflow)",
            body: P.json(S.withAll(
                S.object(
                    nameVersion + [("stage", S.stage), ("archive_existing_versions", S.described(S.boolean, "Only for Staging and Production."))],
                    required: ["name", "version", "stage"]),
                [[
                    "if": ["properties": ["archive_existing_versions": ["const": true]], "required": ["archive_existing_versions"]],
                    "then": ["properties": ["stage": ["enum": ["Staging", "Production", "staging", "production"]]]],
                ]])),
            ok: [("200", version)], errors: [400, 404])
        add(
            "delete", "\(base)/model-versions/delete", tag: "registry", "Delete a model version",
            body: P.json(S.object(nameVersion, required: ["name", "version"])), ok: [("200", R.empty)], errors: [400, 403, 404],
            description: "Refused (403) while a protected alias or an open approval request points at it.")
        add(
            "get", "\(base)/model-versions/get", tag: "registry", "Get a model version",
            params: [P.query("name", S.modelName, required: true), P.query("version", S.version, required: true)],
            ok: [("200", version)], errors: [400, 404])
        add(
            "get", "\(base)/model-versions/search", tag: "registry", "Search model versions",
            params: [
                P.query("filter", S.filter("model-version")), P.query("max_results", S.described(S.int(1, 200_000), "Default 200000.")),
                P.query("order_by", S.array(S.orderBy("model-version"))), P.query("page_token", S.pageToken()),
            ],
            ok: [(
                "200",
                R.json(S.object([("model_versions", S.array(S.ref("ModelVersion"))), ("next_page_token", S.string)]), "{model_versions?, next_page_token?}")
            )],
            errors: [400])
        add(
            "get", "\(base)/model-versions/get-download-uri", tag: "registry", "Where a model version's files are",
            params: [P.query("name", S.modelName, required: true), P.query("version", S.version, required: true)],
            ok: [("200", R.json(S.object([("artifact_uri", S.string)], required: ["artifact_uri"]), "{artifact_uri}"))], errors: [400, 404])
        add(
            "post", "\(base)/model-versions/set-tag", tag: "registry", "Set a model version tag",
            body: P.json(S.object(
                nameVersion + [("key", S.key), ("value", S.string("At most 100000 characters.", maxLength: 100_000))],
                required: ["name", "version", "key"])),
            ok: [("200", R.empty)], errors: [400, 404])
        add(
            "delete", "\(base)/model-versions/delete-tag", tag: "registry", "Delete a model version tag",
            body: P.json(S.object(nameVersion + [("key", S.nonEmpty)], required: ["name", "version", "key"])), ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(base)/registered-models/alias", tag: "registry", "Point an alias at a version",
            body: P.json(S.object([("name", S.modelName), ("alias", S.alias), ("version", S.version)], required: ["name", "alias", "version"])),
            ok: [("200", R.empty)], errors: [400, 403, 404],
            description: "A protected alias is not moved: 403, and an approval request is opened (see /api/reprise/v1/approval-requests).")
        add(
            "delete", "\(base)/registered-models/alias", tag: "registry", "Delete an alias",
            body: P.json(S.object([("name", S.modelName), ("alias", S.nonEmpty)], required: ["name", "alias"])), ok: [("200", R.empty)],
            errors: [400, 403, 404], description: "A protected alias cannot be deleted (403).")
        add(
            "get", "\(base)/registered-models/alias", tag: "registry", "The version an alias points at",
            params: [P.query("name", S.modelName, required: true), P.query("alias", S.nonEmpty, required: true)],
            ok: [("200", version)], errors: [400, 404], description: "An unknown alias is 400, as in MLflow.")
    }

    // MARK: Webhooks

    mutating func webhooks() {
        let base = "/api/2.0/mlflow/webhooks"
        let hook = R.json(S.object([("webhook", S.ref("Webhook"))]), "{webhook}")
        let disabled = "501 when the server runs without webhooks."
        add(
            "post", base, tag: "webhooks", "Create a webhook",
            body: P.json(S.object([
                ("name", S.nonEmpty),
                ("url", S.string("Where deliveries go: https (or MLFLOW_WEBHOOK_ALLOWED_SCHEMES); no internal address unless allowed.", minLength: 1)),
                ("events", S.array(S.ref("WebhookEventInput"), minItems: 1)),
                ("description", S.string), ("secret", S.string("Signs deliveries (HMAC-SHA256); stored sealed.")),
                ("status", S.enumeration(["ACTIVE", "DISABLED", "active", "disabled"])),
            ], required: ["name", "url", "events"])),
            ok: [("200", hook)], errors: [400, 501], description: disabled)
        add(
            "get", base, tag: "webhooks", "List webhooks",
            params: [P.query("max_results", S.int(1, 1000)), P.query("page_token", S.pageToken())],
            ok: [("200", R.json(S.object([("webhooks", S.array(S.ref("Webhook"))), ("next_page_token", S.string)]), "{webhooks, next_page_token?}"))],
            errors: [400, 501], description: disabled)
        add("get", "\(base)/{webhook_id}", tag: "webhooks", "Get a webhook", ok: [("200", hook)], errors: [404, 501], description: disabled)
        add(
            "patch", "\(base)/{webhook_id}", tag: "webhooks", "Update a webhook (absent fields are kept)",
            body: P.json(S.object([
                ("name", S.string), ("description", S.string), ("url", S.string), ("events", S.array(S.ref("WebhookEventInput"))),
                ("status", S.enumeration(["ACTIVE", "DISABLED", "active", "disabled"])), ("secret", S.string("Empty removes it.")),
            ])),
            ok: [("200", hook)], errors: [400, 404, 501], description: disabled)
        add("delete", "\(base)/{webhook_id}", tag: "webhooks", "Delete a webhook", ok: [("200", R.empty)], errors: [404, 501], description: disabled)
        add(
            "post", "\(base)/{webhook_id}/test", tag: "webhooks", "Send a test delivery now",
            body: P.json(S.object([("event", S.ref("WebhookEventInput"))])),
            ok: [("200", R.json(S.ref("WebhookTestResult"), "{result: {success, response_status?, response_body?, error_message?}}"))],
            errors: [400, 404, 501], description: disabled)
    }

    // MARK: Governance

    mutating func governance() {
        let p = RepriseAPI.extensionPrefix
        let request = R.json(S.object([("approval_request", S.ref("ApprovalRequest"))]), "{approval_request}")
        let moved = R.json(S.ref("AliasMoved"), "{moved: true, model, alias, version}: the alias is not protected and moved at once")
        add(
            "get", "\(p)/alias-policies", tag: "governance", "List alias policies",
            params: [P.query("model", S.string)],
            ok: [("200", R.json(S.object([("policies", S.array(S.ref("AliasPolicy")))]), "{policies}"))], errors: [400])
        let pendingChange = R.json(
            S.object([("approval_request", S.ref("ApprovalRequest"))]),
            "Accepted: the current policy requires approval for changes to itself (self_change_requires_approval), so an approval request of kind policy_change was opened; the change is made when it is approved.")
        add(
            "put", "\(p)/alias-policies", tag: "governance", "Protect an alias of a model ('*' for every model)",
            body: P.json(S.ref("AliasPolicy"), required: true),
            ok: [("200", R.json(S.object([("policy", S.ref("AliasPolicy"))]), "{policy}")), ("202", pendingChange)], errors: [400, 404],
            description: "Needs MANAGE on the model (authentication on; for '*': an admin or a MANAGE grant on every model).")
        add(
            "delete", "\(p)/alias-policies", tag: "governance", "Remove a policy",
            body: P.json(S.object([("model", S.nonEmpty), ("alias", S.nonEmpty)], required: ["model", "alias"])),
            ok: [("200", R.empty), ("202", pendingChange)], errors: [400, 404],
            description: "Needs MANAGE on the model (authentication on).")
        add(
            "post", "\(p)/approval-requests", tag: "governance", "Ask to move an alias; moves it at once when the alias is not protected",
            body: P.json(S.object(
                [("model", S.modelName), ("alias", S.alias), ("version", S.version), ("rationale", S.required("Why."))],
                required: ["model", "alias", "version", "rationale"])),
            ok: [("200", moved), ("202", request)], errors: [400, 403, 404])
        add(
            "get", "\(p)/approval-requests", tag: "governance", "List approval requests",
            params: [P.query("model", S.string), P.query("state", S.enumeration(["open", "approved", "rejected", "cancelled"]))],
            ok: [("200", R.json(S.object([("approval_requests", S.array(S.ref("ApprovalRequest")))]), "{approval_requests}"))], errors: [400])
        add("get", "\(p)/approval-requests/{request_id}", tag: "governance", "One request with its votes", ok: [("200", request)], errors: [404])
        for (action, summary) in [
            ("approve", "Approve (not your own request); the alias moves when the rule is met and the checks pass"),
            ("reject", "Reject; nothing moves"), ("cancel", "Cancel (the requester or an approver)"),
        ] {
            let rationale = action == "cancel"
                ? S.object([("rationale", S.string)]) : S.object([("rationale", S.required("Why."))], required: ["rationale"])
            add(
                "post", "\(p)/approval-requests/{request_id}/\(action)", tag: "governance", summary,
                body: P.json(rationale), ok: [("200", request)], errors: [400, 403, 404])
        }
        add(
            "post", "\(p)/aliases/rollback", tag: "governance", "Move an alias back to its previous version (through a request when the policy says so)",
            body: P.json(S.object([("model", S.modelName), ("alias", S.alias), ("rationale", S.required("Why."))], required: ["model", "alias", "rationale"])),
            ok: [("200", moved), ("202", request)], errors: [400, 403, 404])
        add(
            "get", "\(p)/aliases/history", tag: "governance", "Versions an alias pointed at, newest first",
            params: [P.query("model", S.modelName, required: true), P.query("alias", S.nonEmpty, required: true)],
            ok: [("200", R.json(S.object([("history", S.array(S.ref("AliasHistoryEntry")))]), "{history}"))], errors: [400, 404])
        add(
            "get", "\(p)/audit/events", tag: "governance", "Audit events in sequence order",
            params: [
                P.query("entity_type", S.string),
                P.query("entity_id", S.string("A model name also matches its versions (name/N) and aliases (name@alias).")),
                P.query("after_seq", S.int64), P.query("limit", S.described(S.int(1, 100_000), "Default 1000.")),
            ],
            ok: [("200", R.json(S.object([("events", S.array(S.ref("AuditEvent"))), ("next_after_seq", S.int64)], required: ["events"]), "{events, next_after_seq?}"))],
            errors: [400])
        add("get", "\(p)/audit/verify", tag: "governance", "Walk the audit hash chain", ok: [("200", R.json(S.ref("AuditVerification"), "The verdict"))])
        add(
            "post", "\(p)/audit/verify", tag: "governance", "Walk the audit hash chain and check it against checkpoints kept elsewhere",
            body: P.json(S.object([("checkpoints", S.array(S.ref("AuditCheckpoint"), "Signed checkpoints, as an export's last line has them."))])),
            ok: [("200", R.json(S.ref("AuditVerification"), "The verdict"))], errors: [400])
        add(
            "get", "\(p)/audit/checkpoint", tag: "governance", "A signed checkpoint of the chain's head, to keep outside the server",
            ok: [("200", R.json(S.object([("checkpoint", S.nullable(S.ref("AuditCheckpoint")))], required: ["checkpoint"]), "{checkpoint}: null while the trail is empty"))])
        add("get", "\(p)/openapi.json", tag: "meta", "This document", ok: [("200", R.json(["type": "object"], "OpenAPI 3.1"))])
        add(
            "get", "\(p)/webhooks/{webhook_id}/deliveries", tag: "webhooks",
            "A webhook's deliveries, newest first (finished ones are kept 7 days)",
            params: [P.query("max_results", S.int(1, 1000))],
            ok: [("200", R.json(S.object([("deliveries", S.array(S.ref("WebhookDelivery")))]), "{deliveries}"))], errors: [400, 404, 501])
    }

    // MARK: Reproducibility

    mutating func repro() {
        let p = RepriseAPI.extensionPrefix
        let policy = R.json(S.object([("policy", S.ref("ExperimentPolicy"))]), "{policy}")
        add("get", "\(p)/experiments/{experiment_id}/policy", tag: "reproducibility", "The experiment's policy", ok: [("200", policy)], errors: [400, 404])
        add(
            "put", "\(p)/experiments/{experiment_id}/policy", tag: "reproducibility",
            "Set it: strict refuses runs missing a field at creation and at finish; soft tags them reprise.compliant=false",
            body: P.json(S.object([
                ("mode", S.enumeration(["strict", "soft"])),
                ("required", S.array(S.enumeration(PassportField.allCases.map(\.rawValue)))),
                ("refuse_dirty", S.boolean), ("refuse_duplicates", S.boolean),
            ])),
            ok: [("200", policy)], errors: [400, 404])
        add("delete", "\(p)/experiments/{experiment_id}/policy", tag: "reproducibility", "Remove it", ok: [("200", R.empty)], errors: [400, 404])
        add(
            "post", "\(p)/reproductions", tag: "reproducibility",
            "Record a reproduction: the server judges the rerun against the original; tags both runs (reprise.reproduction.*), even a sealed original",
            body: P.json(S.withAll(
                S.object([
                    ("original_run_id", S.nonEmpty),
                    ("rerun_run_id", S.string("The rerun to judge; required unless incomplete_reason is given, and absent with it.")),
                    ("tolerances", S.array(S.string(
                        "metric=abs:0.01, metric=rel:0.5% or metric=rel:0.005.", pattern: #"^[^\x00-\x1f\x7f]+=(abs|rel):[0-9]+(\.[0-9]+)?%?$"#))),
                    ("incomplete_reason", S.string("Why no rerun could be made: records INCOMPLETE.")),
                    ("details", S.described(["type": "object"], "Kept as reported.")),
                ], required: ["original_run_id"], "The verdict is the server's: a request that carries one is refused."),
                [[
                    "if": ["properties": ["incomplete_reason": ["type": "string", "minLength": 1]], "required": ["incomplete_reason"]],
                    "then": ["not": ["required": ["rerun_run_id"]]],
                    "else": ["properties": ["rerun_run_id": ["type": "string", "minLength": 1]], "required": ["rerun_run_id"]],
                ]])),
            ok: [("200", R.json(S.object([("reproduction", S.ref("Reproduction"))]), "{reproduction}"))], errors: [400, 404])
        add(
            "get", "\(p)/reproductions", tag: "reproducibility", "Reproductions of (or by) a run, newest first",
            params: [P.query("run_id", S.nonEmpty, required: true)],
            ok: [("200", R.json(S.object([("reproductions", S.array(S.ref("Reproduction")))]), "{reproductions}"))], errors: [400])
        add(
            "get", "\(p)/lineage", tag: "reproducibility",
            "Lineage graph from an entity: dataset -> run -> logged_model -> model_version -> alias; parent/child runs and reproductions",
            params: [
                P.query(
                    "entity",
                    S.string(
                        "run:ID, dataset:DIGEST, logged_model:ID, model_version:NAME/N, alias:NAME@ALIAS or registered_model:NAME",
                        minLength: 1, format: "reprise-lineage-entity"),
                    required: true),
                P.query("depth", S.int(1, 20)),
            ],
            ok: [("200", R.json(S.object([("lineage", S.ref("Lineage"))]), "{lineage}"))], errors: [400, 404])
    }

    // MARK: Identity

    mutating func identity() {
        let a2 = "/api/2.0/mlflow"
        let a3 = "/api/3.0/mlflow"
        let off = "404 when authentication is off."
        let errors = [400, 404]
        let username = S.string("A user name.", minLength: 1)
        let permission = S.ref("Permission")
        let resourceType = S.ref("ResourceType")
        let roleID = S.described(S.ref("IntegerID"), "A role id.")
        let rolePermissionID = S.described(S.ref("IntegerID"), "A role permission id.")
        let user = R.json(S.object([("user", S.ref("User"))], required: ["user"]), "{user}")
        let role = R.json(S.object([("role", S.ref("Role"))], required: ["role"]), "{role}")
        let roles = R.json(S.object([("roles", S.array(S.ref("Role")))], required: ["roles"]), "{roles}")
        let rolePermission = R.json(S.object([("role_permission", S.ref("RolePermission"))], required: ["role_permission"]), "{role_permission}")
        let permissionRows = R.json(
            S.object([("is_admin", S.boolean), ("permissions", S.array(S.ref("PermissionRow")))], required: ["is_admin", "permissions"]),
            "{is_admin, permissions}: one row per grant, direct (role __user_<id>__) or through a role")

        // Users
        add(
            "post", "\(a2)/users/create", tag: "identity", "Create a user (admins)",
            body: P.json(S.object(
                [("username", username), ("password", S.string("At least 12 characters.", minLength: 12))], required: ["username", "password"])),
            ok: [("200", user)], errors: errors,
            description: "Content-Type must be application/json. A duplicate name is 400 RESOURCE_ALREADY_EXISTS. \(off)")
        add(
            "get", "\(a2)/users/get", tag: "identity", "Get a user (yourself; admins: anyone)",
            params: [P.query("username", username, required: true)], ok: [("200", user)], errors: errors, description: off)
        add(
            "get", "\(a2)/users/current", tag: "identity", "The caller",
            ok: [(
                "200",
                R.json(
                    S.object([("is_basic_auth", S.boolean), ("user", S.ref("User"))], required: ["is_basic_auth", "user"]),
                    "{is_basic_auth, user}")
            )],
            errors: errors, description: off)
        add(
            "get", "\(a2)/users/list", tag: "identity", "Every user (roles shown for yourself; admins: for everyone)",
            ok: [(
                "200",
                R.json(
                    S.object([(
                        "users",
                        S.array(S.object(
                            [("id", S.int64), ("username", S.string), ("is_admin", S.boolean), ("is_service", S.boolean), ("roles", S.array(S.ref("Role")))],
                            required: ["id", "username", "is_admin", "roles"]))
                    )], required: ["users"]),
                    "{users}")
            )],
            errors: errors, description: off)
        add(
            "patch", "\(a2)/users/update-password", tag: "identity", "Change a password (yourself, with current_password; admins: anyone's)",
            body: P.json(S.object(
                [
                    ("username", username), ("password", S.string("The new password: at least 12 characters.", minLength: 12)),
                    ("current_password", S.string("Required when changing your own password.")),
                ], required: ["username", "password"])),
            ok: [("200", R.empty)], errors: errors, description: off)
        add(
            "patch", "\(a2)/users/update-admin", tag: "identity", "Make a user an admin, or not (admins)",
            body: P.json(S.object([("username", username), ("is_admin", S.boolean)], required: ["username", "is_admin"])),
            ok: [("200", R.empty)], errors: errors, description: "is_admin must be a JSON boolean. \(off)")
        add(
            "delete", "\(a2)/users/delete", tag: "identity", "Delete a user (admins; not yourself)",
            body: P.json(S.object([("username", username)], required: ["username"])), ok: [("200", R.empty)], errors: errors,
            description: off)

        // Classic per-resource grants (MLflow clients before 3.14)
        for (kind, what, field, fieldSchema, key) in [
            ("experiments", "an experiment", "experiment_id", S.experimentID, "experiment_permission"),
            ("registered-models", "a registered model", "name", S.modelName, "registered_model_permission"),
        ] {
            let base = "\(a2)/\(kind)/permissions"
            let grant = R.json(
                S.object(
                    [(key, S.object([(field, S.string), ("user_id", S.int64), ("permission", permission)], required: [field, "user_id", "permission"]))],
                    required: [key]),
                "{\(key): {\(field), user_id, permission}}")
            let manage = "Needs MANAGE on \(what) (authentication on). \(off)"
            add(
                "post", "\(base)/create", tag: "identity", "Grant a user a permission on \(what)",
                body: P.json(S.object([(field, fieldSchema), ("username", username), ("permission", permission)], required: [field, "username", "permission"])),
                ok: [("200", grant)], errors: errors, description: "A grant that exists is 400 RESOURCE_ALREADY_EXISTS. \(manage)")
            add(
                "get", "\(base)/get", tag: "identity", "A user's permission on \(what)",
                params: [P.query(field, fieldSchema, required: true), P.query("username", username, required: true)],
                ok: [("200", grant)], errors: errors, description: manage)
            add(
                "patch", "\(base)/update", tag: "identity", "Change a user's permission on \(what)",
                body: P.json(S.object([(field, fieldSchema), ("username", username), ("permission", permission)], required: [field, "username", "permission"])),
                ok: [("200", R.empty)], errors: errors, description: manage)
            add(
                "delete", "\(base)/delete", tag: "identity", "Remove a user's permission on \(what)",
                body: P.json(S.object([(field, fieldSchema), ("username", username)], required: [field, "username"])),
                ok: [("200", R.empty)], errors: errors, description: manage)
        }

        // Roles (Reprise's groups)
        add(
            "post", "\(a3)/roles/create", tag: "identity", "Create a role (a group; admins)",
            body: P.json(S.object(
                [
                    ("name", S.string("Not blank, not starting __user_.", minLength: 1)),
                    ("workspace", S.string("Default: default.", minLength: 1)), ("description", S.string),
                ], required: ["name"])),
            ok: [("200", role)], errors: errors, description: "A duplicate name in the workspace is 400 RESOURCE_ALREADY_EXISTS. \(off)")
        add(
            "get", "\(a3)/roles/get", tag: "identity", "Get a role with its permissions",
            params: [P.query("role_id", roleID, required: true)], ok: [("200", role)], errors: errors, description: off)
        add(
            "get", "\(a3)/roles/list", tag: "identity", "List roles",
            params: [P.query("workspace", S.array(S.string, "Only roles of these workspaces; none: every role."))],
            ok: [("200", roles)], errors: errors, description: off)
        add(
            "patch", "\(a3)/roles/update", tag: "identity", "Rename a role or change its description (admins)",
            body: P.json(S.object([("role_id", roleID), ("name", S.nonEmpty), ("description", S.string)], required: ["role_id"])),
            ok: [("200", role)], errors: errors, description: "At least one of name and description. \(off)")
        add(
            "delete", "\(a3)/roles/delete", tag: "identity", "Delete a role (admins)",
            body: P.json(S.object([("role_id", roleID)], required: ["role_id"])), ok: [("200", R.empty)], errors: errors, description: off)
        add(
            "post", "\(a3)/roles/permissions/add", tag: "identity", "Add a grant to a role (admins)",
            body: P.json(S.object(
                [
                    ("role_id", roleID), ("resource_type", resourceType),
                    ("resource_pattern", S.string("A resource id or name, or * for every resource of the type (workspace: * only).", minLength: 1)),
                    ("permission", S.described(permission, "workspace grants: USE or MANAGE; others: READ, USE, EDIT, MANAGE or DENY.")),
                ], required: ["role_id", "resource_type", "resource_pattern", "permission"])),
            ok: [("200", rolePermission)], errors: errors, description: off)
        add(
            "delete", "\(a3)/roles/permissions/remove", tag: "identity", "Remove a grant from a role (admins)",
            body: P.json(S.object([("role_permission_id", rolePermissionID)], required: ["role_permission_id"])),
            ok: [("200", R.empty)], errors: errors, description: off)
        add(
            "get", "\(a3)/roles/permissions/list", tag: "identity", "A role's grants",
            params: [P.query("role_id", roleID, required: true)],
            ok: [(
                "200",
                R.json(S.object([("role_permissions", S.array(S.ref("RolePermission")))], required: ["role_permissions"]), "{role_permissions}")
            )],
            errors: errors, description: off)
        add(
            "patch", "\(a3)/roles/permissions/update", tag: "identity", "Change the level of a role's grant (admins)",
            body: P.json(S.object([("role_permission_id", rolePermissionID), ("permission", permission)], required: ["role_permission_id", "permission"])),
            ok: [("200", rolePermission)], errors: errors, description: off)
        let assignment = S.object([("username", username), ("role_id", roleID)], required: ["username", "role_id"])
        add(
            "post", "\(a3)/roles/assign", tag: "identity", "Add a user to a role (admins)", body: P.json(assignment),
            ok: [("200", R.json(S.object([("assignment", S.ref("UserRoleAssignment"))], required: ["assignment"]), "{assignment}"))],
            errors: errors, description: off)
        add(
            "delete", "\(a3)/roles/unassign", tag: "identity", "Remove a user from a role (admins)", body: P.json(assignment),
            ok: [("200", R.empty)], errors: errors, description: off)
        add(
            "get", "\(a3)/roles/users/list", tag: "identity", "A role's members (admins)",
            params: [P.query("role_id", roleID, required: true)],
            ok: [(
                "200",
                R.json(S.object([("assignments", S.array(S.ref("UserRoleAssignment")))], required: ["assignments"]), "{assignments}")
            )],
            errors: errors, description: off)
        add(
            "get", "\(a3)/users/roles/list", tag: "identity", "A user's roles (yourself; admins: anyone)",
            params: [P.query("username", username, required: true)], ok: [("200", roles)], errors: errors, description: off)

        // Per-user grants (MLflow 3.17's AuthServiceClient)
        let resourceID = S.described(
            ["anyOf": [S.nonEmpty, S.int64]], "The resource: an experiment id or a registered model name, or * (admins only).")
        add(
            "post", "\(a3)/users/permissions/grant", tag: "identity", "Grant a user a permission on a resource",
            body: P.json(S.object(
                [("username", username), ("resource_type", resourceType), ("resource_id", resourceID), ("permission", permission)],
                required: ["username", "resource_type", "resource_id", "permission"])),
            ok: [("200", R.empty)], errors: errors,
            description: "Needs MANAGE on the resource (admins: any, and *). A grant that exists is 400 RESOURCE_ALREADY_EXISTS: revoke it first. resource_type workspace is 400. \(off)")
        add(
            "post", "\(a3)/users/permissions/revoke", tag: "identity", "Revoke a user's permission on a resource",
            body: P.json(S.object(
                [("username", username), ("resource_type", resourceType), ("resource_id", resourceID)],
                required: ["username", "resource_type", "resource_id"])),
            ok: [("200", R.empty)], errors: errors, description: "Needs MANAGE on the resource (admins: any). \(off)")
        add(
            "get", "\(a3)/users/permissions/get", tag: "identity", "A user's effective permission on a resource (yourself; admins: anyone)",
            params: [
                P.query("username", username, required: true), P.query("resource_type", resourceType, required: true),
                P.query("resource_id", S.nonEmpty, required: true),
            ],
            ok: [(
                "200",
                R.json(
                    S.object([("allowed", S.boolean), ("permission", permission)], required: ["allowed", "permission"]),
                    "{allowed, permission}: the level after grants, groups and the default; allowed: whether it is at least USE")
            )],
            errors: errors, description: off)
        add(
            "get", "\(a3)/users/permissions/list", tag: "identity", "A user's grants (yourself; admins: anyone)",
            params: [P.query("username", username, required: true)], ok: [("200", permissionRows)], errors: errors, description: off)
        add(
            "get", "\(a3)/users/current/permissions", tag: "identity", "The caller's grants", ok: [("200", permissionRows)], errors: errors,
            description: off)

        // Reprise: who am I, access tokens, service accounts
        let p = RepriseAPI.extensionPrefix
        add(
            "get", "\(p)/whoami", tag: "identity", "Who the server takes the caller to be",
            ok: [(
                "200",
                R.json(
                    S.object(
                        [
                            ("authenticated", S.boolean), ("auth_enabled", S.boolean), ("username", S.string),
                            ("is_admin", S.boolean), ("is_service", S.boolean),
                            ("method", S.enumeration(["basic", "token", "oidc", "session"])), ("groups", S.array(S.string)),
                            ("token_id", S.string("The access token used, if any.")),
                        ], required: ["authenticated", "auth_enabled", "username"]),
                    "{authenticated, auth_enabled, username, ...}: with authentication off, the name the caller claims (authenticated false)")
            )])
        let tokenBody = S.object(
            [
                ("name", S.string("What it is for (1 to 200 bytes; default token).", minLength: 1, maxLength: 200)),
                ("expires_in_days", S.described(S.int(0, 3650, format: "int64"), "Default 90; 0: never.")),
                ("expires_in_seconds", S.described(S.int(1, 3650 * 86_400, format: "int64"), "A lifetime in seconds instead of days (short-lived tokens).")),
                ("username", S.string("Admins: the user or service account the token is for (default: the caller).", minLength: 1)),
            ])
        add(
            "post", "\(p)/tokens", tag: "identity", "Create an access token (for bearer authentication); the secret is shown only here",
            body: P.json(tokenBody),
            ok: [(
                "200",
                R.json(
                    S.object([("token", S.ref("AccessToken")), ("secret", S.string("rpt_...: send it as Authorization: Bearer (MLFLOW_TRACKING_TOKEN)."))], required: ["token", "secret"]),
                    "{token, secret}")
            )],
            errors: errors, description: off)
        add(
            "get", "\(p)/tokens", tag: "identity", "The caller's access tokens (admins: anyone's)",
            params: [P.query("username", S.string("Admins: another user's tokens; * for everyone's.", minLength: 1))],
            ok: [("200", R.json(S.object([("tokens", S.array(S.ref("AccessToken")))], required: ["tokens"]), "{tokens}"))],
            errors: errors, description: off)
        add(
            "delete", "\(p)/tokens", tag: "identity", "Revoke an access token (your own; admins: anyone's)",
            body: P.json(S.object([("id", S.string("The token's id.", minLength: 1))], required: ["id"])),
            ok: [("200", R.empty)], errors: errors, description: off)
        add(
            "post", "\(p)/service-accounts", tag: "identity", "Create a service account (admins): a user without a password, for tokens",
            body: P.json(S.object(
                [
                    ("username", username),
                    ("can_act_as", S.described(S.boolean, "May name the user it acts for in X-Reprise-Actor (both are recorded). Default false.")),
                ], required: ["username"])),
            ok: [(
                "200",
                R.json(
                    S.object([(
                        "user",
                        S.object(
                            [("id", S.int64), ("username", S.string), ("is_service", S.boolean), ("can_act_as", S.boolean)],
                            required: ["id", "username", "is_service", "can_act_as"])
                    )], required: ["user"]),
                    "{user}")
            )],
            errors: errors, description: off)
    }

    // MARK: UI

    mutating func ui() {
        let pageErrors = [400, 404]
        // The pages are lenient: a filter or order they cannot use is shown as an error on the page.
        let runsParams: [J] = [
            P.query("filter", S.string("A run filter in MLflow's search grammar; one it cannot use is reported on the page.")),
            P.query("order", S.string("An order_by clause for runs (default attributes.start_time DESC).")),
            P.query("size", S.string("Runs per page, 1 to 1000 (default 50).")), P.query("page", S.string("The next-page link's token.")),
            P.query("params", S.string("Param columns, comma separated.")), P.query("metrics", S.string("Metric columns, comma separated.")),
            P.query("tags", S.string("Tag columns, comma separated.")), P.query("format", S.string("csv: the table as a CSV file.")),
            P.query("range", S.string("1: show each metric's range.")),
        ]
        // How metric charts are drawn (ChartOptions); a value out of range answers 400.
        let chartParams: [J] = [
            P.query("xaxis", S.enumeration(MetricAxis.allCases.map(\.rawValue), "The x axis (default step).")),
            P.query("log", S.string("1: a log-scale y axis.")), P.query("band", S.string("0: no min/max band.")),
            P.query("smooth", S.string("Exponential moving average weight, 0 to 0.99.")),
            P.query("from", S.string("Zoom: the first x shown (axis units; relative time in milliseconds).")),
            P.query("to", S.string("Zoom: the last x shown.")),
        ]
        let runsOK: [(String, J)] = [(
            "200",
            [
                "description": "The runs table (HTML), or a CSV file with format=csv.",
                "content": ["text/html": ["schema": S.string], "text/csv": ["schema": S.string]],
            ]
        )]
        let form = { (fields: [(String, J)], required: [String]) -> J in
            P.form(S.object([("csrf", S.string("The token of the page's form (also in the reprise_csrf cookie)."))] + fields + [("actor", S.string("Who you are."))],
                            required: ["csrf"] + required))
        }
        let formErrors = [400, 403, 404, 413]
        let formDescription = "Needs the reprise_csrf cookie and the same token in the csrf field (403 otherwise); a browser's Origin must be this server."
        add("get", "/", tag: "ui", "The web UI's entry: maps MLflow's #/… links onto /ui/ pages", ok: [("200", R.html)])
        add(
            "get", "/ui/static/route.js", tag: "ui", "The script that maps MLflow's #/… links",
            ok: [("200", ["description": "JavaScript", "content": ["text/javascript": ["schema": S.string]]])])
        add(
            "get", "/ui/static/app.js", tag: "ui", "The UI's script",
            ok: [("200", ["description": "JavaScript", "content": ["text/javascript": ["schema": S.string]]])])
        add(
            "get", "/ui/", tag: "ui", "Experiments",
            params: [P.query("q", S.string("Name contains.")), P.query("view", S.string("deleted: the deleted experiments."))],
            ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "post", "/ui/experiments", tag: "ui", "Create an experiment (form)", body: form([("name", S.experimentName)], ["name"]),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add("get", "/ui/experiments/{experiment_id}", tag: "ui", "An experiment's runs", params: runsParams, ok: runsOK, htmlErrors: pageErrors)
        add(
            "post", "/ui/experiments/{experiment_id}/rename", tag: "ui", "Rename an experiment (form)", body: form([("name", S.experimentName)], ["name"]),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/experiments/{experiment_id}/delete", tag: "ui", "Delete an experiment (form)", body: form([], []),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "get", "/ui/runs", tag: "ui", "Runs of several experiments",
            params: [P.query("experiments", S.string("Experiment ids, comma separated.", pattern: "^[0-9]{1,18}(,[0-9]{1,18})*$"), required: true)] + runsParams,
            ok: runsOK, htmlErrors: pageErrors)
        add("get", "/ui/runs/{run_id}", tag: "ui", "A run", params: chartParams, ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/runs/{run_id}/images", tag: "ui", "A run's images logged per step, with a step slider",
            params: [P.query("key", S.string), P.query("step", S.int64)], ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/runs/{run_id}/artifacts", tag: "ui", "A run's artifacts",
            params: [P.query("path", S.artifactPath(file: false))], ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/runs/{run_id}/runbook", tag: "ui", "How to reproduce a run", ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/runs/{run_id}/runbook.md", tag: "ui", "The run book as Markdown",
            ok: [("200", ["description": "A Markdown file", "content": ["text/markdown": ["schema": S.string]]])], htmlErrors: pageErrors)
        add(
            "get", "/ui/runs/{run_id}/reproduce.sh", tag: "ui", "A shell script that reruns the run",
            ok: [("200", ["description": "A shell script", "content": ["text/x-shellscript": ["schema": S.string]]])], htmlErrors: pageErrors)
        add(
            "post", "/ui/runs/{run_id}/note", tag: "ui", "Save a run's notes (form)", body: form([("note", S.string("Markdown."))], []),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/runs/{run_id}/rename", tag: "ui", "Rename a run (form)", body: form([("name", S.nonEmpty)], ["name"]),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/runs/{run_id}/tags", tag: "ui", "Set a run tag (form)", body: form([("key", S.key), ("value", S.string)], ["key"]),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/runs/{run_id}/tags/delete", tag: "ui", "Delete a run tag (form)", body: form([("key", S.key)], ["key"]),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/runs/{run_id}/delete", tag: "ui", "Delete a run (form; it can be restored)", body: form([], []),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "post", "/ui/runs/{run_id}/restore", tag: "ui", "Restore a deleted run (form)", body: form([], []),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        add(
            "get", "/ui/compare", tag: "ui", "Compare runs",
            params: [
                P.query("runs", S.array(S.string("A run id (ids may also be comma separated).", pattern: "^[^,]+$"), minItems: 2), required: true),
                P.query("diff", S.string("1: only the rows that differ.")), P.query("baseline", S.string),
                P.query("x", S.string), P.query("y", S.string), P.query("axes", S.string("Columns, comma separated.")),
            ] + chartParams,
            ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/charts", tag: "ui", "The charts workspace: every metric of the chosen runs as a grid of charts",
            params: [
                P.query("runs", S.array(S.string("A run id (ids may also be comma separated).", pattern: "^[^,]+$"), minItems: 1, maxItems: 50), required: true),
                P.query("metrics", S.string("Only these metric keys, comma separated.")),
            ] + chartParams,
            ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/experiments/{experiment_id}/chart", tag: "ui", "One metric across the runs of an experiment (lines, or bars for values logged once)",
            params: [
                P.query("metric", S.string("The metric key; the first one logged when absent.")), P.query("filter", S.filter("run")),
                P.query("order", S.string("A run search order, e.g. metrics.accuracy DESC.")), P.query("size", S.int(1, 100)),
            ] + chartParams,
            ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/models", tag: "ui", "Registered models", ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/models/{name}", tag: "ui", "A registered model", ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/models/{name}/versions/{version}", tag: "ui",
            "A model version: source run, logged model, signature, input example, tags, approvals, lineage", ok: [("200", R.html)],
            htmlErrors: pageErrors)
        add(
            "get", "/ui/experiments/{experiment_id}/traces", tag: "ui", "An experiment's traces, filtered",
            params: [P.query("filter", S.filter("trace")), P.query("page", S.pageToken())], ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/experiments/{experiment_id}/models", tag: "ui", "An experiment's logged models and their registered versions", ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/traces/{trace_id}", tag: "ui", "A trace: its span tree, inputs, outputs and assessments", ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/deployments", tag: "ui", "Deployments, by environment", params: [P.query("environment", S.string)], ok: [("200", R.html)],
            htmlErrors: pageErrors)
        add("get", "/ui/deployments/{deployment_id}", tag: "ui", "A deployment: versions, measurements, incidents", ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/incidents/{incident_id}", tag: "ui", "An incident and its deployment", ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/prompts", tag: "ui", "Prompts", ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/prompts/{name}", tag: "ui", "A prompt: versions, templates, aliases, evaluations", ok: [("200", R.html)], htmlErrors: pageErrors)
        add(
            "get", "/ui/prompts/{name}/diff", tag: "ui", "The line diff of two versions of a prompt",
            params: [P.query("from", S.version, required: true), P.query("to", S.version, required: true)], ok: [("200", R.html)], htmlErrors: pageErrors)
        add("get", "/ui/approvals", tag: "ui", "Open approval requests", ok: [("200", R.html)], htmlErrors: pageErrors)
        for action in ["approve", "reject"] {
            add(
                "post", "/ui/approvals/{request_id}/\(action)", tag: "ui", "\(action.capitalized) an approval request (form)",
                body: form([("rationale", S.string)], []), ok: [("303", R.redirect)], htmlErrors: formErrors, description: formDescription)
        }
        add(
            "get", "/ui/lineage", tag: "ui", "Lineage of an entity",
            params: [P.query("entity", S.string("As for /api/reprise/v1/lineage.", minLength: 1, format: "reprise-lineage-entity"), required: true)],
            ok: [("200", R.html)], htmlErrors: pageErrors + [501])

        // Signing in, tokens and administration (authentication on; without it the login page
        // sends a browser to the experiments and the other pages are 404).
        let csrfField: (String, J) = ("csrf", S.string("The token of the page's form (also in the reprise_csrf cookie)."))
        let authForm = { (fields: [(String, J)], required: [String]) -> J in
            P.form(S.object([csrfField] + fields, required: ["csrf"] + required))
        }
        let authOff = "404 when authentication is off."
        add(
            "get", "/ui/login", tag: "ui", "The sign-in form",
            params: [P.query("next", S.string("The page of this UI to go to after signing in; anything else goes to the experiments."))],
            ok: [("200", R.html), ("303", R.redirect)],
            description: "Signed in already (a live session), or authentication off: 303 to the next page.")
        add(
            "post", "/ui/login", tag: "ui", "Sign in (form): sets the session cookie (HttpOnly, SameSite=Lax; Secure under TLS)",
            body: authForm([("username", S.string), ("password", S.string), ("next", S.string("As for GET /ui/login."))], ["username", "password"]),
            ok: [("303", R.redirect)], htmlErrors: [401, 403, 413],
            description: "A wrong user name or password is 401 with the form again. \(formDescription)")
        add(
            "post", "/ui/logout", tag: "ui", "Sign out (form): clears the session cookie", body: authForm([], []),
            ok: [("303", R.redirect)], htmlErrors: [403, 413], description: formDescription)
        add("get", "/ui/tokens", tag: "ui", "Your access tokens", ok: [("200", R.html)], htmlErrors: pageErrors, description: authOff)
        add(
            "post", "/ui/tokens", tag: "ui", "Create an access token (form): the page shows its secret this once",
            body: authForm(
                [("name", S.string("1 to 200 bytes.")), ("expires_in_days", S.string("Days, 0 (never) to 3650."))], ["name", "expires_in_days"]),
            ok: [("200", R.html)], htmlErrors: formErrors, description: "\(formDescription) \(authOff)")
        add(
            "post", "/ui/tokens/{token_id}/revoke", tag: "ui", "Revoke an access token (form): your own; admins: anyone's",
            body: authForm([("from", S.string("admin: back to the admin page."))], []),
            ok: [("303", R.redirect)], htmlErrors: formErrors, description: "\(formDescription) \(authOff)")
        add(
            "get", "/ui/admin", tag: "ui", "Administration (admins): users, groups, grants, everyone's tokens",
            ok: [("200", R.html)], htmlErrors: pageErrors, description: authOff)
        let username: (String, J) = ("username", S.string("A user name."))
        let roleID: (String, J) = ("role_id", S.string("A group (role) id."))
        for (action, summary, fields, required) in [
            (
                "users/create", "Create a user (form)",
                [username, ("password", S.string("At least 12 characters.")), ("is_admin", S.string("true: an admin."))], ["username", "password"]
            ),
            ("users/delete", "Delete a user (form; not yourself)", [username], ["username"]),
            ("users/admin", "Make a user an admin, or not (form; not yourself)", [username, ("is_admin", S.enumeration(["true", "false"]))], ["username", "is_admin"]),
            ("groups/create", "Create a group (form)", [("name", S.string), ("description", S.string)], ["name"]),
            ("groups/delete", "Delete a group (form)", [roleID], ["role_id"]),
            ("groups/add-member", "Add a user to a group (form)", [roleID, username], ["role_id", "username"]),
            ("groups/remove-member", "Remove a user from a group (form)", [roleID, username], ["role_id", "username"]),
            (
                "grants/create", "Grant a user or group a permission on an experiment or registered model (form)",
                [
                    ("holder", S.string("user:<name> or group:<id>.")), ("resource_type", S.enumeration(["experiment", "registered_model"])),
                    ("resource", S.string("An experiment id or model name, or *.")), ("permission", S.enumeration(["READ", "USE", "EDIT", "MANAGE", "DENY"])),
                ],
                ["holder", "resource_type", "resource", "permission"]
            ),
            ("grants/delete", "Remove a grant (form)", [("grant_id", S.string("A grant id."))], ["grant_id"]),
        ] as [(String, String, [(String, J)], [String])] {
            add(
                "post", "/ui/admin/\(action)", tag: "ui", "\(summary) (admins)", body: authForm(fields, required),
                ok: [("303", R.redirect)], htmlErrors: formErrors, description: "\(formDescription) \(authOff)")
        }
    }

    // MARK: Components

    static func components() -> J {
        let int64 = S.int64
        let str = S.string
        let kv = S.array(S.ref("KeyValue"))
        var schemas = JSONObject()
        schemas["Error"] = S.object(
            [("error_code", S.string("An MLflow error code such as INVALID_PARAMETER_VALUE or RESOURCE_DOES_NOT_EXIST.")), ("message", str)],
            required: ["error_code", "message"], "MLflow's error envelope.")
        schemas["KeyValue"] = S.object([("key", str), ("value", str)], required: ["key"])
        schemas["Param"] = S.request(S.object([("key", S.key), ("value", S.string("At most 6000 characters are kept."))], required: ["key"]))
        schemas["TagInput"] = S.request(S.object([("key", S.key), ("value", S.string)], required: ["key"]))
        schemas["MetricInput"] = S.request(S.object(
            [
                ("key", S.key), ("value", S.double), ("timestamp", S.nonNegativeInt64), ("step", S.int64),
                ("model_id", str), ("dataset_name", str), ("dataset_digest", str),
            ], required: ["key", "value", "timestamp"]))
        schemas["Experiment"] = S.object([
            ("experiment_id", str), ("name", str), ("artifact_location", str), ("lifecycle_stage", S.enumeration(["active", "deleted"])),
            ("last_update_time", int64), ("creation_time", int64), ("tags", kv),
        ])
        schemas["RunInfo"] = S.object([
            ("run_uuid", str), ("run_id", str), ("experiment_id", str), ("run_name", str), ("user_id", str),
            ("status", S.enumeration(["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"])), ("start_time", int64), ("end_time", int64),
            ("artifact_uri", str), ("lifecycle_stage", S.enumeration(["active", "deleted"])),
        ])
        schemas["Metric"] = S.object([
            ("key", str), ("value", S.double), ("timestamp", int64), ("step", int64), ("dataset_name", str), ("dataset_digest", str),
            ("model_id", str), ("run_id", str),
        ])
        schemas["Dataset"] = S.object([
            ("name", str), ("digest", str), ("source_type", str), ("source", str), ("schema", str), ("profile", str),
        ])
        schemas["DatasetInput"] = S.object([("tags", kv), ("dataset", S.ref("Dataset"))])
        schemas["DatasetInputRequest"] = S.request(S.object([
            ("tags", S.array(S.object([("key", S.string("At most 255 characters.", minLength: 1, maxLength: 255)), ("value", S.string("At most 500 characters.", maxLength: 500))], required: ["key"]))),
            ("dataset", S.object([
                ("name", S.string("At most 500 characters.", minLength: 1, maxLength: 500)),
                ("digest", S.string("At most 36 characters.", minLength: 1, maxLength: 36)),
                ("source_type", S.nonEmpty), ("source", S.string("At most 65535 characters.", minLength: 1, maxLength: 65535)),
                ("schema", S.string("At most 1048575 characters.", maxLength: 1_048_575)), ("profile", S.string),
            ], required: ["name", "digest", "source_type", "source"])),
        ], required: ["dataset"]))
        schemas["Run"] = S.object([
            ("info", S.ref("RunInfo")),
            ("data", S.object([("metrics", S.array(S.ref("Metric"))), ("params", kv), ("tags", kv)])),
            ("inputs", S.object([
                ("dataset_inputs", S.array(S.ref("DatasetInput"))), ("model_inputs", S.array(S.object([("model_id", str)]))),
            ])),
            ("outputs", S.object([("model_outputs", S.array(S.object([("model_id", str), ("step", int64)])))])),
        ])
        schemas["DatasetSummary"] = S.object([("experiment_id", str), ("name", str), ("digest", str), ("context", str)])
        schemas["FileInfo"] = S.object([("path", str), ("is_dir", S.boolean), ("file_size", int64)], required: ["path", "is_dir"])
        schemas["LoggedModel"] = S.object([
            ("info", S.object([
                ("model_id", str), ("experiment_id", str), ("name", str), ("creation_timestamp_ms", int64),
                ("last_updated_timestamp_ms", int64), ("artifact_uri", str),
                ("status", S.enumeration(["LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"])),
                ("model_type", str), ("source_run_id", str), ("status_message", str), ("tags", kv),
            ])),
            ("data", S.object([("params", kv), ("metrics", S.array(S.ref("Metric")))])),
        ])
        schemas["TraceInfoV3"] = S.object([
            ("trace_id", str),
            ("trace_location", S.object([("type", str), ("mlflow_experiment", S.object([("experiment_id", str)]))])),
            ("request_time", S.described(str, "RFC 3339, such as 2026-11-25T17:58:14.071Z.")),
            ("execution_duration", S.described(str, "Seconds, such as 0.021s.")), ("state", S.enumeration(TraceState.allCases.map(\.rawValue))),
            ("client_request_id", str), ("request_preview", str), ("response_preview", str),
            ("trace_metadata", ["type": "object", "additionalProperties": str]), ("tags", ["type": "object", "additionalProperties": str]),
            ("assessments", S.array(S.ref("Assessment"))),
        ])
        schemas["EvaluationDataset"] = S.object([
            ("dataset_id", str), ("name", str), ("tags", S.described(str, "A JSON object of strings, as a string.")),
            ("schema", S.described(str, "JSON text.")), ("profile", S.described(str, "JSON text.")), ("digest", str),
            ("created_time", int64), ("last_update_time", int64), ("created_by", str), ("last_updated_by", str),
            ("experiment_ids", S.array(str)),
        ])
        schemas["Scorer"] = S.object([
            ("experiment_id", int64), ("scorer_name", str), ("scorer_version", int64), ("serialized_scorer", str),
            ("creation_time", int64), ("scorer_id", str),
        ])
        let versionRef = S.object([("name", str), ("version", str), ("alias", str)])
        schemas["Deployment"] = S.object([
            ("id", str), ("environment", str), ("model", versionRef), ("prompts", S.array(versionRef)), ("endpoint", str),
            ("config_sha256", str), ("config", str), ("note", str), ("deployed_by", str), ("deployed_time", int64), ("previous_id", str),
        ])
        schemas["Incident"] = S.object([
            ("id", str), ("deployment_id", str), ("note", str), ("opened_by", str), ("opened_time", int64), ("status", S.enumeration(["open", "closed"])),
            ("closed_by", str), ("closed_time", int64), ("resolution", str),
        ])
        schemas["TraceInfoV2"] = S.object([
            ("request_id", str), ("experiment_id", str), ("timestamp_ms", int64), ("execution_time_ms", int64), ("status", str),
            ("request_metadata", kv), ("tags", kv),
        ])
        schemas["Trace"] = S.object([
            ("trace_info", S.ref("TraceInfoV3")),
            ("spans", S.array(S.described(["type": "object"], "An OpenTelemetry span in protobuf's JSON mapping (proto field names, ids in base64)."))),
        ])
        schemas["Assessment"] = S.object([
            ("assessment_id", str), ("assessment_name", str), ("trace_id", str), ("span_id", str),
            ("source", S.object([("source_type", str), ("source_id", str)])), ("create_time", str), ("last_update_time", str),
            ("feedback", S.object([("value", [:]), ("error", ["type": "object"])])), ("expectation", S.object([("value", [:]), ("serialized_value", ["type": "object"])])),
            ("rationale", str), ("metadata", ["type": "object", "additionalProperties": str]), ("overrides", str), ("valid", S.boolean),
        ])
        schemas["ModelVersion"] = S.object([
            ("name", str), ("version", str), ("creation_timestamp", int64), ("last_updated_timestamp", int64), ("current_stage", str),
            ("description", str), ("source", str), ("run_id", str), ("status", str), ("run_link", str), ("user_id", str),
            ("status_message", str), ("model_id", str), ("tags", kv), ("aliases", S.array(str)),
        ])
        schemas["RegisteredModel"] = S.object([
            ("name", str), ("creation_timestamp", int64), ("last_updated_timestamp", int64), ("description", str), ("user_id", str),
            ("latest_versions", S.array(S.ref("ModelVersion"))), ("tags", kv),
            ("aliases", S.array(S.object([("alias", str), ("version", str)]))),
        ])
        schemas["ServerInfo"] = S.object([
            ("store_type", str), ("workspaces_enabled", S.boolean), ("trace_archival_enabled", S.boolean),
            ("multipart_uploads_enabled", S.boolean), ("multipart_downloads_enabled", S.boolean),
            ("presigned_upload_run_id_supported", S.boolean), ("presigned_upload_model_id_supported", S.boolean),
            ("serve_artifacts", S.boolean), ("server", str), ("features_enabled", ["type": "object"]),
        ])
        let entities = WebhookEvent.validActions.keys.sorted()
        schemas["WebhookEventInput"] = [
            "description": "An event a webhook subscribes to; names are case-insensitive.",
            "oneOf": .array(entities.map { entity in
                let actions = WebhookEvent.validActions[entity]!
                return S.object(
                    [
                        ("entity", S.enumeration([entity.uppercased(), entity])),
                        ("action", S.enumeration(actions.map { $0.uppercased() } + actions)),
                    ], required: ["entity", "action"])
            }),
        ]
        schemas["WebhookEvent"] = S.object([("entity", str), ("action", str)])
        schemas["Webhook"] = S.object([
            ("webhook_id", str), ("name", str), ("description", str), ("url", str), ("events", S.array(S.ref("WebhookEvent"))),
            ("status", S.enumeration(["ACTIVE", "DISABLED"])), ("creation_timestamp", int64), ("last_updated_timestamp", int64),
        ])
        schemas["WebhookTestResult"] = S.object([
            ("result", S.object([("success", S.boolean), ("response_status", int64), ("response_body", str), ("error_message", str)])),
        ])
        schemas["WebhookDelivery"] = S.object([
            ("delivery_id", str), ("webhook_id", str), ("event", S.ref("WebhookEvent")), ("state", S.enumeration(["PENDING", "DELIVERED", "FAILED"])),
            ("attempts", int64), ("next_attempt_timestamp", int64), ("last_response_status", int64), ("last_error", str), ("payload", [:]),
            ("creation_timestamp", int64), ("last_updated_timestamp", int64),
        ])
        schemas["ApprovalCheck"] = S.request(S.withAll(
            S.object(
                [
                    ("type", S.enumeration(["run_complete", "reproduced", "metric_not_worse"])),
                    ("metric", S.string("For metric_not_worse: the metric to compare.", minLength: 1)),
                    ("margin", S.described([:], "For metric_not_worse: a number (default 0).")),
                    ("higher_is_better", S.described([:], "For metric_not_worse: a boolean (default true); another value is ignored.")),
                ], required: ["type"]),
            [["if": ["properties": ["type": ["const": "metric_not_worse"]]], "then": ["required": ["metric"]]]]))
        schemas["AliasPolicy"] = S.request(S.object(
            [
                ("model", S.string("A registered model name, or * for every model.", minLength: 1)),
                ("alias", S.alias),
                ("required_approvals", S.int(1, Int64(Int32.max))),
                ("approvers", S.array(str, "Empty: anyone but the requester.")),
                ("checks", S.array(S.ref("ApprovalCheck"))),
                ("rollback_requires_approval", S.boolean),
                ("self_change_requires_approval", S.described(
                    S.boolean,
                    "Changing or deleting this policy opens an approval request (kind policy_change) that its own approvers decide (default false).")),
            ], required: ["model", "alias"]))
        schemas["ApprovalRequest"] = S.object([
            ("id", str), ("model", str), ("alias", str), ("target_version", str), ("previous_version", str),
            ("kind", S.enumeration(["move", "rollback", "policy_change"], "policy_change: a change to a policy that requires approval for changes to itself (target_version 0).")),
            ("requester", str), ("rationale", str),
            ("state", S.enumeration(["open", "approved", "rejected", "cancelled"])), ("required_approvals", int64),
            ("approvers", S.array(str)), ("checks", S.array(S.ref("ApprovalCheck"))),
            ("votes", S.array(S.object([("approver", str), ("decision", str), ("rationale", str), ("time", int64)]))),
            ("created_time", int64), ("updated_time", int64), ("resolution", str),
        ])
        schemas["AuditCheckpoint"] = S.object(
            [("seq", int64), ("hash", str), ("time", int64), ("signature", str)], required: ["seq", "hash", "time", "signature"])
        schemas["AliasMoved"] = S.object([("moved", S.boolean), ("model", str), ("alias", str), ("version", str)], required: ["moved"])
        schemas["AliasHistoryEntry"] = S.object([("version", str), ("time", int64), ("actor", str), ("approval_request", str)])
        schemas["AuditEvent"] = S.object([
            ("seq", int64), ("time", int64), ("actor", str), ("authenticated", S.boolean), ("action", str), ("entity_type", str),
            ("entity_id", str), ("summary", [:]), ("request_id", str), ("prev_hash", str),
            ("hash", S.string("SHA-256 of the JSON array [seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id, prev_hash], followed by the event's authentication record when it has one.")),
            ("auth_method", S.enumeration(["basic", "token", "oidc", "session"], "How the actor authenticated (authenticated events only).")),
            ("token_id", S.string("The access token used, if any (its public id).")),
            ("via", S.string("The service account that acted for the actor, if one did.")),
        ])
        schemas["AuditVerification"] = S.object([
            ("ok", S.boolean), ("checked", int64), ("first_bad_seq", int64), ("problem", str), ("head_seq", int64), ("head_hash", str),
            ("checkpoints_checked", int64),
            ("authenticated_events", S.described(int64, "How many of the events checked were written by an authenticated caller.")),
            ("authenticated_by_method", S.described(
                ["type": "object", "additionalProperties": int64], "Those events by how the caller authenticated: basic, token, oidc, session.")),
        ], required: ["ok", "checked"])
        schemas["ExperimentPolicy"] = S.object([
            ("experiment_id", str), ("mode", S.enumeration(["strict", "soft"])), ("required", S.array(str)), ("refuse_dirty", S.boolean),
            ("refuse_duplicates", S.boolean), ("updated_timestamp", int64), ("updated_by", str),
        ])
        schemas["Reproduction"] = S.object([
            ("id", str), ("original_run_id", str), ("rerun_run_id", str), ("verdict", S.enumeration(["REPRODUCED", "DIVERGED", "INCOMPLETE"])),
            ("summary", str), ("details", [:]), ("timestamp", int64), ("actor", str),
        ])
        schemas["Lineage"] = S.object([
            ("root", str),
            ("nodes", S.array(S.object([("type", str), ("id", str), ("label", str)]))),
            ("edges", S.array(S.object([("from", str), ("to", str), ("relation", str)]))),
        ])

        schemas["Permission"] = S.enumeration(Permission.allCases.map(\.rawValue), "A permission level: READ < USE < EDIT < MANAGE; NO_PERMISSIONS; DENY (wins over any other grant).")
        schemas["ResourceType"] = S.enumeration(ResourceType.allCases.map(\.rawValue), "What a grant is on.")
        schemas["IntegerID"] = [
            "description": "An integer id, as a JSON number or a decimal string.",
            "anyOf": [S.int64, S.string("Decimal digits.", pattern: "^-?[0-9]{1,18}$")],
        ]
        schemas["User"] = S.object([("id", int64), ("username", str), ("is_admin", S.boolean)], required: ["id", "username", "is_admin"])
        schemas["RolePermission"] = S.object(
            [("id", int64), ("role_id", int64), ("resource_type", str), ("resource_pattern", str), ("permission", str)],
            required: ["id", "role_id", "resource_type", "resource_pattern", "permission"])
        schemas["Role"] = S.object(
            [
                ("id", int64), ("name", str), ("workspace", str), ("description", S.nullable(str)),
                ("permissions", S.array(S.ref("RolePermission"))),
            ], required: ["id", "name"], "A role: Reprise's group, named in approver lists as group:<name>.")
        schemas["UserRoleAssignment"] = S.object([("id", int64), ("user_id", int64), ("role_id", int64)], required: ["id", "user_id", "role_id"])
        schemas["PermissionRow"] = S.object(
            [
                ("permission", str), ("resource_pattern", str), ("resource_type", str), ("role_id", int64), ("role_name", str),
                ("workspace", str),
            ], required: ["permission", "resource_pattern", "resource_type", "role_id", "role_name", "workspace"])
        schemas["AccessToken"] = S.object(
            [
                ("id", str), ("name", str), ("username", str), ("created_time", int64), ("expires_time", S.nullable(int64)),
                ("last_used_time", S.nullable(int64)), ("revoked", S.boolean),
            ], required: ["id", "name", "username", "created_time", "revoked"], "An access token's record; never its secret.")

        var responses = JSONObject()
        for (name, what) in [
            ("BadRequest", "Invalid request (INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, BAD_REQUEST, INVALID_STATE)"),
            ("Forbidden", "Refused. With authentication on, a caller whose permission does not allow the operation gets the text/plain body Permission denied (as MLflow answers). Otherwise JSON (PERMISSION_DENIED): a Host not allowed or a cross-site write; X-Reprise-Actor from a caller that may not act for others; or by governance: a sealed run or artifact, a protected alias, a vote not allowed; or an artifact location outside the server's roots"),
            ("NotFound", "No such entity (RESOURCE_DOES_NOT_EXIST)"),
            ("NotImplemented", "Not supported by this server or this configuration (NOT_IMPLEMENTED)"),
            ("Unavailable", "Turned off on this server, or busy reading other large requests (TEMPORARILY_UNAVAILABLE)"),
        ] {
            responses[name] = R.json(S.ref("Error"), what)
        }
        responses["Forbidden"] = [
            "description": responses["Forbidden"]?["description"] ?? "",
            "content": ["application/json": ["schema": S.ref("Error")], "text/plain": ["schema": ["type": "string", "const": "Permission denied"]]],
        ]
        responses["Unauthenticated"] = [
            "description": "No credentials, or wrong ones (authentication on): MLflow's plain-text answer, which the mlflow client raises as UNAUTHENTICATED.",
            "headers": ["WWW-Authenticate": ["required": true, "schema": ["type": "string", "const": "Basic realm=\"mlflow\""]]],
            "content": ["text/plain": ["schema": S.string]],
        ]
        for (status, what) in [
            (400, "The page or form cannot be shown or done (HTML)"), (401, "Wrong user name or password: the sign-in form again (HTML)"), (403, "The form's security token is missing or wrong (HTML), or the request was refused (JSON: a Host not allowed, a cross-site write)"),
            (404, "No such entity or page (HTML)"), (413, "The form is too large (HTML)"), (501, "Not available on this server (HTML)"),
        ] as [(Int, String)] {
            var content = JSONObject([("text/html", ["schema": S.string])])
            if status == 403 {
                content["application/json"] = ["schema": S.ref("Error")]
                content["text/plain"] = ["schema": ["type": "string", "const": "Permission denied"]]
            }
            responses["HTML\(status)"] = ["description": .string(what), "content": .object(content)]
        }
        let securitySchemes: J = [
            "basic": [
                "type": "http", "scheme": "basic",
                "description": "A user name and password (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD).",
            ],
            "bearer": [
                "type": "http", "scheme": "bearer",
                "description": "A personal or service-account access token rpt_... (MLFLOW_TRACKING_TOKEN; see /api/reprise/v1/tokens), or a JWT from the configured OIDC issuer.",
            ],
            "session": [
                "type": "apiKey", "in": "cookie", "name": "reprise_session",
                "description": "The web UI's session, set by the login form.",
            ],
        ]
        return ["schemas": .object(schemas), "responses": .object(responses), "securitySchemes": securitySchemes]
    }
}
