'use strict';
// Drives Smartcar's official Node SDK, unchanged, against Ignition; tests/e2e/test_node_sdk.py
// runs it and makes the assertions. The SDK reads its origins from the environment
// (SMARTCAR_API_ORIGIN, which it also uses for Connect, SMARTCAR_AUTH_ORIGIN,
// SMARTCAR_MANAGEMENT_API_ORIGIN); the rest comes from these variables:
//   SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET, SMARTCAR_REDIRECT_URI,
//   JOURNEY_SCOPE (space-separated), JOURNEY_STATE, JOURNEY_MANAGEMENT_TOKEN.
//
//   node journey.js auth-url    prints the Connect URL the SDK builds
//   node journey.js run <code>  walks the journey, prints one JSON object of what the SDK returned
//
// On an unexpected error it prints the failing step and the SDK's error to stderr and exits 1.

const smartcar = require('smartcar');
const {version: sdkVersion} = require('smartcar/package.json');

const env = process.env;

function authClient() {
  return new smartcar.AuthClient({
    clientId: env.SMARTCAR_CLIENT_ID,
    clientSecret: env.SMARTCAR_CLIENT_SECRET,
    redirectUri: env.SMARTCAR_REDIRECT_URI,
    mode: 'live',
  });
}

// The fields of a SmartcarError a developer would look at.
function describeError(error) {
  if (!(error instanceof smartcar.SmartcarError)) {
    throw error;
  }
  return {
    name: error.name,
    message: error.message,
    statusCode: error.statusCode,
    type: error.type ?? null,
    code: error.code ?? null,
    description: error.description ?? null,
    resolution: error.resolution ?? null,
    requestId: error.requestId ?? null,
  };
}

let currentStep = 'start';

async function step(name, call) {
  currentStep = name;
  return call();
}

// A call that should fail: its SmartcarError, or what it returned if it did not fail.
async function stepExpectingError(name, call) {
  currentStep = name;
  try {
    return {unexpectedSuccess: await call()};
  } catch (error) {
    return describeError(error);
  }
}

async function run(code) {
  const client = authClient();
  const result = {sdkVersion};

  const access = await step('exchangeCode', () => client.exchangeCode(code));
  result.access = {
    accessTokenLength: access.accessToken.length,
    refreshTokenLength: access.refreshToken.length,
    expiresInSeconds: Math.round((access.expiration - Date.now()) / 1000),
  };

  const vehicles = await step('getVehicles', () => smartcar.getVehicles(access.accessToken));
  result.vehicles = vehicles;
  result.user = await step('getUser', () => smartcar.getUser(access.accessToken));

  const vehicle = new smartcar.Vehicle(vehicles.vehicles[0], access.accessToken);
  result.attributes = await step('attributes', () => vehicle.attributes());
  result.vin = await step('vin', () => vehicle.vin());
  result.odometer = await step('odometer', () => vehicle.odometer());
  result.location = await step('location', () => vehicle.location());
  result.lockStatusBefore = await step('lockStatus', () => vehicle.lockStatus());
  result.unlock = await step('unlock', () => vehicle.unlock());
  result.lockStatusAfterUnlock = await step('lockStatus after unlock', () => vehicle.lockStatus());
  result.lock = await step('lock', () => vehicle.lock());
  result.lockStatusAfterLock = await step('lockStatus after lock', () => vehicle.lockStatus());

  const batch = await step('batch', () => vehicle.batch(['/odometer', '/location']));
  result.batch = {
    odometer: await step('batch odometer', () => batch.odometer()),
    location: await step('batch location', () => batch.location()),
  };

  result.permissions = await step('permissions', () => vehicle.permissions());
  // read_fuel was not granted
  result.deniedError = await stepExpectingError('request GET fuel', () => vehicle.request('get', 'fuel'));

  const refreshed = await step('exchangeRefreshToken', () => client.exchangeRefreshToken(access.refreshToken));
  result.refreshedTokenDiffers = refreshed.accessToken !== access.accessToken;
  result.refreshedRefreshTokenDiffers = refreshed.refreshToken !== access.refreshToken;
  result.userWithRefreshedToken = await step('getUser with refreshed token', () => smartcar.getUser(refreshed.accessToken));

  result.connections = await step('getConnections', () => smartcar.getConnections(env.JOURNEY_MANAGEMENT_TOKEN));

  result.disconnect = await step('disconnect', () => vehicle.disconnect());
  result.afterDisconnectError = await stepExpectingError('odometer after disconnect', () => vehicle.odometer());
  return result;
}

async function main([command, ...args]) {
  if (command === 'auth-url') {
    const scope = (env.JOURNEY_SCOPE || '').split(' ').filter(Boolean);
    console.log(authClient().getAuthUrl(scope, {state: env.JOURNEY_STATE, makeBypass: 'TESLA'}));
  } else if (command === 'run' && args.length === 1) {
    console.log(JSON.stringify(await run(args[0]), null, 2));
  } else {
    console.error('usage: node journey.js auth-url | node journey.js run <code>');
    process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error) => {
  console.error(`step "${currentStep}" failed:`);
  if (error instanceof smartcar.SmartcarError) {
    console.error(JSON.stringify(describeError(error), null, 2));
  } else {
    console.error(error.stack, error.cause ?? '');
  }
  process.exitCode = 1;
});
