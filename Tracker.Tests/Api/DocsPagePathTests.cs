using Microsoft.AspNetCore.Http;
using Tracker.ApiService.Http;

namespace Tracker.Tests.Api;

/// <summary>Which paths get the docs page's content security policy: /api, its assets and /api/v1, not the API below it.</summary>
public sealed class DocsPagePathTests
{
    [Theory]
    [InlineData("/api", true)]
    [InlineData("/api/", true)]
    [InlineData("/API/scalar.js", true)]
    [InlineData("/api/v1", true)]
    [InlineData("/api/V1/", true)]
    [InlineData("/api/v1x", true)]
    [InlineData("/api/v1/usages/daily", false)]
    [InlineData("/api/v1//", false)]
    [InlineData("/apix", false)]
    [InlineData("/alive", false)]
    [InlineData("/", false)]
    [InlineData("", false)]
    public void Only_the_docs_page_and_its_assets_are_docs(string path, bool docs) =>
        Assert.Equal(docs, SecurityHeadersMiddleware.IsDocsPage(new PathString(path)));
}
