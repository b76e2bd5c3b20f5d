import Foundation
import RepriseClient
import Testing

@Suite("Client credentials")
struct CredentialsTests {
    @Test func tokenIDComesFromTheSecret() {
        #expect(Credentials.tokenID(ofSecret: "rpt_ab12cd_secretpart") == "tok_ab12cd")
        #expect(Credentials.tokenID(ofSecret: "rpt__x") == nil)
        #expect(Credentials.tokenID(ofSecret: "eyJhbGciOi.jwt") == nil)
    }

    @Test func authorizationHeaders() {
        #expect(Credentials.basic(username: "alice", password: "p:w").authorization == "Basic YWxpY2U6cDp3")
        #expect(Credentials.bearer(token: "rpt_a_b").authorization == "Bearer rpt_a_b")
        #expect(!Credentials.bearer(token: "rpt_a_b").description.contains("rpt_a_b"))
        #expect(!Credentials.basic(username: "alice", password: "hunter2").description.contains("hunter2"))
    }

    /// The mlflow client's order: Basic when both user name and password are set, else the token.
    @Test func environmentOrder() {
        let both = ["MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_TOKEN": "t"]
        #expect(Credentials.fromEnvironment(both)?.credentials == .basic(username: "u", password: "p"))
        let userOnly = ["MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_TOKEN": "t"]
        #expect(Credentials.fromEnvironment(userOnly)?.credentials == .bearer(token: "t"))
        #expect(Credentials.fromEnvironment(["MLFLOW_TRACKING_USERNAME": "u"]) == nil)
        #expect(Credentials.fromEnvironment([:]) == nil)
    }

    @Test func defaultDirectory() {
        #expect(CredentialStore.defaultDirectory(environment: ["REPRISE_CONFIG_DIR": "/x", "XDG_CONFIG_HOME": "/y"]) == "/x")
        #expect(CredentialStore.defaultDirectory(environment: ["XDG_CONFIG_HOME": "/y", "HOME": "/h"]) == "/y/reprise")
        #expect(CredentialStore.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.config/reprise")
    }

    @Test func storeKeepsOneLoginPerTrackingURIPrivately() throws {
        let dir = NSTemporaryDirectory() + "reprise-creds-" + UUID().uuidString + "/reprise"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let store = CredentialStore(directory: dir)
        #expect(try store.entry(for: "http://h:5000") == nil)
        let a = CredentialStore.Entry(token: "rpt_a_1", tokenID: "tok_a", username: "alice", expiresTime: 5, createdTime: 1)
        let b = CredentialStore.Entry(token: "rpt_b_2", tokenID: "tok_b", username: "bob", expiresTime: nil, createdTime: 2)
        try store.save(a, for: "http://h:5000/")
        try store.save(b, for: "http://other:5000")
        #expect(try store.entry(for: "http://h:5000") == a)
        #expect(try store.entry(for: "http://other:5000/") == b)
        let fileMode = try FileManager.default.attributesOfItem(atPath: store.file)[.posixPermissions] as? Int
        let dirMode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
        #expect(dirMode == 0o700)
        #expect(!store.isExposed())
        let replaced = CredentialStore.Entry(token: "rpt_c_3", tokenID: "tok_c", username: "alice", expiresTime: nil, createdTime: 3)
        try store.save(replaced, for: "http://h:5000")
        #expect(try store.entries().count == 2)
        #expect(try store.remove(for: "http://h:5000") == replaced)
        #expect(try store.entry(for: "http://h:5000") == nil)
        #expect(try store.entry(for: "http://other:5000") == b)
        #expect(try store.remove(for: "http://h:5000") == nil)
    }
}
