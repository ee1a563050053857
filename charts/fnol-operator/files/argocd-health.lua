-- Argo CD health of a FnolModel (serving.fnol.io), from the conditions the
-- operator writes (docs/crd-reference.md, "Conditions and reasons").
--   Progressing  no status yet, status older than the spec (observedGeneration),
--                a rollout or a model check under way, the candidate starting
--   Degraded     Degraded=True, Ready=False for a failure, or the candidate failed
--   Suspended    scaled to zero on purpose (spec.replicas: 0)
--   Healthy      Ready=True and nothing rolling out
-- Argo CD runs this with the object as the global obj and reads hs.status and
-- hs.message.
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

-- Reasons of Ready=False and CanaryReady=False that need someone to act.
local failures = {
  ModelDigestMismatch = true,
  ModelUnreachable = true,
  ModelHostNotAllowed = true,
  CredentialsSecretNotAllowed = true,
  ProgressDeadlineExceeded = true,
  NoReadyReplicas = true,
  ResourceConflict = true,
  CanaryFailed = true,
  GatewayAPIMissing = true,
}

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on this FnolModel"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation) ..
    " (status describes " .. tostring(status.observedGeneration or "none") .. ")"
  return hs
end

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")
local progressing = condition(status.conditions, "Progressing")
local canary = condition(status.conditions, "CanaryReady")

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end
if ready ~= nil and ready.status == "False" and failures[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
local wantsCanary = obj.spec ~= nil and obj.spec.canary ~= nil
if wantsCanary and canary ~= nil and canary.status == "False" and failures[canary.reason] then
  hs.status = "Degraded"
  hs.message = "Canary " .. describe(canary)
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing)
  if ready ~= nil and ready.status == "True" and ready.message ~= nil and ready.message ~= "" then
    hs.message = hs.message .. " (" .. ready.message .. ")"
  end
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  if ready ~= nil then
    hs.message = describe(ready)
  else
    hs.message = "Waiting for the Ready condition"
  end
  return hs
end
if wantsCanary and (canary == nil or (canary.status ~= "True" and canary.reason ~= "ScaledToZero")) then
  hs.status = "Progressing"
  if canary ~= nil then
    hs.message = "Canary " .. describe(canary)
  else
    hs.message = "Waiting for the CanaryReady condition"
  end
  return hs
end
if ready.reason == "ScaledToZero" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end
hs.status = "Healthy"
hs.message = describe(ready)
if wantsCanary and canary ~= nil then
  hs.message = hs.message .. "; canary " .. describe(canary)
end
return hs
