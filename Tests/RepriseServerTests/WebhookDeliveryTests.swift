import AsyncHTTPClient
import Foundation
import Logging
import RepriseCore
import Testing

@testable import RepriseServer

@Suite("Webhook delivery")
struct WebhookDeliveryTests {
    /// A delivery captured from the reference MLflow 3.17.2 server, with the secret it was created with.
    @Test func signatureMatchesTheReferenceServer() {
        let body =
            #"{"entity": "registered_model", "action": "created", "timestamp": "2026-11-30T14:16:06.582013+00:00", "data": {"name": "m1", "tags": {"a": "b"}, "description": "desc"}}"#
        let sig = WebhookDeliverer.signature(
            secret: "s3cret", deliveryID: "91c2eb86-b041-4ac3-b60b-ea7dedecaa22", timestamp: 1_796_048_166, body: body)
        #expect(sig == "v1,fo98BeVqgOhQRB2N9mdLUeU5uY+JCT3yyOHCN67w6/Q=")
        // Any change to id, time, body or secret changes it.
        #expect(
            WebhookDeliverer.signature(secret: "s3cret", deliveryID: "91c2eb86-b041-4ac3-b60b-ea7dedecaa22", timestamp: 1_796_048_167, body: body)
                != sig)
        #expect(
            WebhookDeliverer.signature(secret: "s3cre7", deliveryID: "91c2eb86-b041-4ac3-b60b-ea7dedecaa22", timestamp: 1_796_048_166, body: body)
                != sig)
    }

    @Test func payloadShape() throws {
        #expect(WebhookEvent.timestamp(Date(timeIntervalSince1970: 1_796_048_166.5)) == "2026-11-30T14:16:06.500000+00:00")
        #expect(WebhookEvent.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000+00:00")
        let body = WebhookEvent(entity: "MODEL_VERSION_ALIAS", action: "CREATED").payload(
            data: ["name": "m", "alias": "a", "version": "1"], at: Date(timeIntervalSince1970: 1_796_048_166.5))
        #expect(
            body == #"{"entity":"model_version_alias","action":"created","timestamp":"2026-11-30T14:16:06.500000+00:00","data":{"name":"m","alias":"a","version":"1"}}"#)
    }

    /// DNS rebinding: a name that answers a public address for the check and an internal one
    /// afterwards. The deliverer looks the name up once and pins the connection to the address it
    /// checked, so the second answer is never asked for; a name with any internal answer is refused.
    @Test func deliveriesConnectToTheAddressThatWasChecked() async throws {
        actor Lookups {
            var count = 0
            func next() -> Int {
                count += 1
                return count
            }
        }
        let lookups = Lookups()
        var settings = WebhookSettings.fromEnvironment([:])
        settings.allowPrivateIPs = false
        let deliverer = WebhookDeliverer(settings: settings, logger: Logger(label: "test")) { host in
            #expect(host == "rebind.example")
            let n = await lookups.next()
            return (n == 1 ? [[203, 0, 113, 5]] : [[127, 0, 0, 1]], false)
        }
        defer { Task { await deliverer.shutdown() } }
        let target = await deliverer.pinnedConfiguration(url: "https://rebind.example/hook")
        guard case .pinned(let config) = target else {
            Issue.record("expected a pinned client, got \(target)")
            return
        }
        #expect(config.dnsOverride == ["rebind.example": "203.0.113.5"])
        #expect(await lookups.count == 1)

        // A name with an internal answer among its addresses is refused outright.
        let mixed = WebhookDeliverer(settings: settings, logger: Logger(label: "test")) { _ in ([[203, 0, 113, 5], [10, 0, 0, 7]], false) }
        defer { Task { await mixed.shutdown() } }
        guard case .refused(let reason) = await mixed.pinnedConfiguration(url: "https://mixed.example/hook") else {
            Issue.record("a name resolving to 10.0.0.7 must be refused")
            return
        }
        #expect(reason.contains("10.0.0.7"))
        // An IPv6 answer is pinned in the form the override takes.
        let v6 = WebhookDeliverer(settings: settings, logger: Logger(label: "test")) { _ in
            ([[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]], false)
        }
        defer { Task { await v6.shutdown() } }
        #expect(await v6.pinnedConfiguration(url: "https://v6.example/") == .pinned({
            var c = HTTPClient.Configuration()
            c.dnsOverride = ["v6.example": "2001:db8::1"]
            return c
        }()))
    }

    @Test func internalAddresses() {
        for addr in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
            "100.64.0.1", "224.0.0.1", "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "[::1]"]
        {
            let bytes = WebhookDeliverer.literalAddress(addr)
            #expect(bytes != nil && WebhookDeliverer.isInternal(bytes!), "\(addr) is internal")
        }
        for external in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            let bytes = WebhookDeliverer.literalAddress(external)
            #expect(bytes != nil && !WebhookDeliverer.isInternal(bytes!), "\(external) is external")
        }
        #expect(WebhookDeliverer.literalAddress("example.com") == nil)
    }

    @Test func urlChecks() async throws {
        let strict = WebhookDeliverer(settings: WebhookSettings(), logger: Logger(label: "t"))
        defer { Task { await strict.shutdown() } }
        try strict.validateURL("https://hooks.example.com/x")
        for (url, fragment) in [
            ("http://hooks.example.com/x", "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."),
            ("ftp://x", "Invalid webhook URL scheme: 'ftp'"), ("notaurl", "Invalid webhook URL scheme: ''"),
            ("https://127.0.0.1/x", "private or internal address"), ("https://[::1]:8443/", "private or internal address"),
            ("https://10.0.0.7/", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"), ("https://localhost/", "loopback host"),
        ] {
            #expect(throws: RepriseError.self) { try strict.validateURL(url) }
            do { try strict.validateURL(url) } catch let e as RepriseError { #expect(e.message.contains(fragment), "\(url): \(e.message)") }
        }
        // Resolution is checked at send time too: a name that resolves to loopback is refused.
        let attempt = await strict.send(url: "https://localhost:1/x", secret: nil, deliveryID: "d", timestamp: 1, body: "{}")
        #expect(attempt.status == nil && attempt.error?.contains("internal address") == true && attempt.retryable)

        let open = WebhookDeliverer(
            settings: WebhookSettings.fromEnvironment(["MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http, https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"]),
            logger: Logger(label: "t"))
        defer { Task { await open.shutdown() } }
        try open.validateURL("http://127.0.0.1:9/x")
        try open.validateURL("http://localhost/x")
    }

    @Test func settingsAndBackoff() {
        let s = WebhookSettings.fromEnvironment([
            "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "5", "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "7", "REPRISE_WEBHOOK_RETRY_BASE_MS": "100",
        ])
        #expect(s.timeoutSeconds == 5 && s.maxRetries == 7 && s.retryBaseMillis == 100 && s.allowedSchemes == ["https"] && !s.allowPrivateIPs)
        for retry in 1...6 {
            let nominal = Double(100 << (retry - 1))
            let wait = Double(s.backoffMillis(retry: retry))
            #expect(wait >= nominal * 0.8 - 1 && wait <= nominal * 1.2 + 1, "retry \(retry) waits \(wait) ms")
        }
        #expect(WebhookSettings().backoffMillis(retry: 40) <= 360_000, "capped")
        let defaults = WebhookSettings.fromEnvironment([:])
        #expect(defaults.timeoutSeconds == 30 && defaults.maxRetries == 3)
    }

    @Test func eventValidation() throws {
        #expect(try WebhookEvent(validating: ["entity": "model_version", "action": "CREATED"]) == WebhookEvent(entity: "MODEL_VERSION", action: "CREATED"))
        for (bad, message) in [
            (["entity": "REGISTERED_MODEL", "action": "DELETED"] as JSONValue,
             "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']"),
            (["entity": "MODEL_VERSION_TAG", "action": "CREATED"], "Invalid action 'created' for entity 'model_version_tag'. Valid actions are: ['deleted', 'set']"),
            (["entity": "EXPERIMENT", "action": "CREATED"], "Invalid webhook event entity 'experiment'"),
            (["entity": 3], "must be an object"),
        ] {
            do {
                _ = try WebhookEvent(validating: bad)
                Issue.record("\(bad) was accepted")
            } catch let e as RepriseError {
                #expect(e.message.contains(message), "\(e.message)")
            }
        }
        #expect(throws: RepriseError.self) { _ = try WebhookEvent.parseList([]) }
        let list = try WebhookEvent.parseList([
            ["entity": "REGISTERED_MODEL", "action": "CREATED"], ["entity": "MODEL_VERSION", "action": "CREATED"],
            ["entity": "MODEL_VERSION", "action": "CREATED"],
        ])
        #expect(list.map(\.dottedName) == ["model_version.created", "registered_model.created"], "sorted, duplicates collapsed")
    }
}
