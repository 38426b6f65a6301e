using Tracker.Web.Components;

var builder = WebApplication.CreateBuilder(args);

// Run from a build (the AppHost, the tests) in any environment, the CSS and script are found through the build's
// static web assets manifest; a published app has no such manifest and serves its own wwwroot.
builder.WebHost.UseStaticWebAssets();

builder.AddServiceDefaults();
builder.AddWebSecurity();
builder.AddCookieSignIn();
builder.AddTrackerApiClient();
builder.Services.AddRazorComponents();

var app = builder.Build();

// Errors are pages in words in every environment: no developer exception page, no stack trace.
app.UseExceptionHandler(new ExceptionHandlerOptions
{
    ExceptionHandlingPath = "/error",
    CreateScopeForErrors = true,
    // A request the framework refused (a form without its antiforgery token, an unreadable form) is the
    // client's mistake: a 400, not a 500.
    StatusCodeSelector = static exception => exception is BadHttpRequestException refused ? refused.StatusCode : StatusCodes.Status500InternalServerError,
});
app.UseStatusCodePagesWithReExecute("/status", "?code={0}", createScopeForStatusCodePages: true);
app.UseSecurityHeaders();
app.UseAuthentication();
app.UseAuthorization();
app.UseAntiforgery();

app.MapDefaultEndpoints();
app.MapStaticAssets();
app.MapAccountEndpoints();
app.MapRazorComponents<App>();

app.Run();
