using System.Text.Json.Serialization;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.Usage;

/// <summary>Source-generated JSON metadata for the analytics answers (a hot read path), added to the app's JSON options.</summary>
[JsonSerializable(typeof(Envelope<IReadOnlyList<DailyCount>>))]
[JsonSerializable(typeof(Envelope<IReadOnlyList<TopClient>>))]
[JsonSerializable(typeof(Envelope<IReadOnlyList<EndpointUsage>>))]
[JsonSerializable(typeof(Envelope<UsageSeries>))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
