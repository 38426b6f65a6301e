namespace Tracker.Tests.Infrastructure;

/// <summary>
/// A test class with an API of its own (fresh database, shared PostgreSQL and Redis) for each test, and an
/// HTTP client for it.
/// </summary>
public abstract class ApiTest(ServersFixture servers, IDictionary<string, string?>? settings = null) : IAsyncLifetime
{
    protected ServersFixture Servers => servers;

    protected TrackerApiFactory Factory { get; private set; } = null!;

    protected HttpClient Http { get; private set; } = null!;

    public virtual async Task InitializeAsync()
    {
        Factory = await TrackerApiFactory.CreateAsync(servers, settings);
        Http = Factory.CreateClient();
    }

    public virtual async Task DisposeAsync()
    {
        Http.Dispose();
        await Factory.DisposeAsync();
    }
}
