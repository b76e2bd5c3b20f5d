import Foundation
import Hummingbird
import RepriseCore

extension RepriseAPI {
    /// Example data for a test delivery of `event`, in the shape a real event of that kind has.
    static func sampleWebhookData(_ event: WebhookEvent) -> JSONValue {
        let model = "example_model"
        switch event.entity.lowercased() {
        case "registered_model":
            return ["name": .string(model), "tags": ["example_key": "example_value"], "description": "An example registered model"]
        case "model_version":
            return [
                "name": .string(model), "version": "1", "source": "models:/m-0123456789abcdef", "run_id": "0123456789abcdef0123456789abcdef",
                "tags": ["example_key": "example_value"], "description": "An example model version",
            ]
        case "model_version_tag", "prompt_version_tag":
            let name: JSONValue = event.entity.hasPrefix("PROMPT") ? "example_prompt" : .string(model)
            return event.action == "SET"
                ? ["name": name, "version": "1", "key": "example_key", "value": "example_value"]
                : ["name": name, "version": "1", "key": "example_key"]
        case "model_version_alias", "prompt_alias":
            let name: JSONValue = event.entity.hasPrefix("PROMPT") ? "example_prompt" : .string(model)
            return event.action == "CREATED" ? ["name": name, "alias": "example_alias", "version": "1"] : ["name": name, "alias": "example_alias"]
        case "prompt":
            return ["name": "example_prompt", "tags": ["example_key": "example_value"], "description": "An example prompt"]
        case "prompt_version":
            return [
                "name": "example_prompt", "version": "1", "template": "Hello {{name}}!", "tags": ["example_key": "example_value"],
                "description": "An example prompt version",
            ]
        case "prompt_tag":
            return event.action == "SET"
                ? ["name": "example_prompt", "key": "example_key", "value": "example_value"]
                : ["name": "example_prompt", "key": "example_key"]
        default:
            return [:]
        }
    }

    func registerWebhooks() {
        let base = "/api/2.0/mlflow/webhooks"
        guard let webhooks = self.webhooks, let deliverer = self.deliverer else {
            let unavailable: Handler = { _ in
                throw RepriseError(.notImplemented, "Webhooks are not enabled on this server.")
            }
            for m in [HTTPRequest.Method.get, .post] { route(m, base, access: .admin, unavailable) }
            for m in [HTTPRequest.Method.get, .patch, .delete] { route(m, base + "/{webhook_id}", access: .admin, unavailable) }
            route(.post, base + "/{webhook_id}/test", access: .admin, unavailable)
            return
        }

        route(.post, base, access: .admin) { call in
            let p = try await call.params()
            let name = try p.requiredString("name")
            let url = try p.requiredString("url")
            guard try p.raw("events") != nil else { throw RepriseError.missing("events") }
            let events = try WebhookEvent.parseList(try p.array("events"))
            try deliverer.validateURL(url)
            let status = try p.string("status").map { try WebhookStatus(parsing: $0) } ?? .active
            let hook = try await webhooks.createWebhook(
                name: name, description: try p.string("description") ?? "", url: url, events: events, secret: try p.string("secret"),
                status: status)
            return Self.json(["webhook": hook.json])
        }
        route(.get, base, access: .admin) { call in
            let p = try await call.params()
            let page = try await webhooks.listWebhooks(
                maxResults: Int(clamping: try p.int64("max_results") ?? 100), pageToken: try p.string("page_token"))
            var o = JSONObject()
            o["webhooks"] = .array(page.items.map(\.json))
            if let next = page.nextOffset { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }

        route(.get, base + "/{webhook_id}", access: .admin) { call in
            Self.json(["webhook": try await webhooks.getWebhook(id: try call.pathParameter("webhook_id")).json])
        }
        route(.patch, base + "/{webhook_id}", access: .admin) { call in
            let id = try call.pathParameter("webhook_id")
            let p = try await call.params()
            var update = WebhookUpdate()
            if let name = try p.string("name"), !name.isEmpty { update.name = name }
            update.description = try p.string("description")
            if let url = try p.string("url"), !url.isEmpty {
                try deliverer.validateURL(url)
                update.url = url
            }
            if try p.raw("events") != nil {
                let items = try p.array("events")
                if !items.isEmpty { update.events = try WebhookEvent.parseList(items) }
            }
            if let status = try p.string("status"), !status.isEmpty { update.status = try WebhookStatus(parsing: status) }
            update.secret = try p.string("secret")
            return Self.json(["webhook": try await webhooks.updateWebhook(id: id, update).json])
        }
        route(.delete, base + "/{webhook_id}", access: .admin) { call in
            try await webhooks.deleteWebhook(id: try call.pathParameter("webhook_id"))
            return Self.json(Self.empty)
        }
        route(.post, base + "/{webhook_id}/test", access: .admin) { call in
            let id = try call.pathParameter("webhook_id")
            let p = try await call.params()
            let hook = try await webhooks.getWebhook(id: id)
            var event = hook.events.first ?? WebhookEvent(entity: "MODEL_VERSION", action: "CREATED")
            if let raw = try p.raw("event"), raw != .null { event = try WebhookEvent(validating: raw) }
            let now = Date()
            let attempt = await deliverer.send(
                url: hook.url, secret: try await webhooks.webhookSecret(id: id), deliveryID: RandomID.uuid(),
                timestamp: Int64(now.timeIntervalSince1970), body: event.payload(data: Self.sampleWebhookData(event), at: now))
            let result = WebhookTestResult(
                success: attempt.succeeded, responseStatus: attempt.status, responseBody: attempt.body,
                errorMessage: attempt.error.map { "Failed to test webhook: \($0)" })
            return Self.json(result.json)
        }

        // Reprise's own: what happened to a webhook's deliveries.
        route(.get, "\(Self.extensionPrefix)/webhooks/{webhook_id}/deliveries", access: .admin) { call in
            let id = try call.pathParameter("webhook_id")
            let limit = Int(clamping: try Params(source: .query(call.query)).int64("max_results") ?? 100)
            let list = try await webhooks.deliveries(webhookID: id, limit: limit)
            return Self.json(["deliveries": .array(list.map(\.json))])
        }
    }
}
