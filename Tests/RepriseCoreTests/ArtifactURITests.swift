import Testing

@testable import RepriseCore

@Suite("Artifact URIs")
struct ArtifactURITests {
    @Test func proxyPaths() {
        #expect(ArtifactURI.proxyPath("mlflow-artifacts:/1/abc/artifacts") == "/1/abc/artifacts")
        #expect(ArtifactURI.proxyPath("mlflow-artifacts://host:5000/1/abc") == "/1/abc")
        #expect(ArtifactURI.proxyPath("mlflow-artifacts://host:5000") == "")
        #expect(ArtifactURI.proxyPath("mlflow-artifacts:/a%20b") == "/a%20b")
        #expect(ArtifactURI.proxyPath("s3://bucket/x") == nil && ArtifactURI.proxyPath("/tmp/x") == nil)
    }
}
