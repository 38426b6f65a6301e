using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.AppHost;

/// <summary>
/// Tests that start the whole system (dotnet, the orchestrator, initdb and both servers): each alone, never beside
/// the API-level tests, whose timings they would disturb on a 2-core machine. The servers are for
/// <see cref="ExternalModeTests"/>, which points the AppHost at them.
/// </summary>
[CollectionDefinition(nameof(WholeSystem), DisableParallelization = true)]
public sealed class WholeSystem : ICollectionFixture<ServersFixture>;
