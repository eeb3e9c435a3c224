"""Sources and campaigns over the API: thin views that check the role, validate shape and call one service."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.hygiene import source_confirm, source_quarantine, source_register, sources_overview
from casework.models import Campaign, Case
from casework.selectors import campaign_links_visible
from docket import roles
from docket.api import RestrictedMixin, role_permission
from docket.visibility import restrict
from policies.models import SignalSource

# --- sources -------------------------------------------------------------------------------------------------------


class SourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = SignalSource
        fields = [
            "slug",
            "name",
            "kind",
            "trust",
            "status",
            "baseline_rate",
            "current_rate",
            "status_changed_at",
            "health_checked_at",
        ]
        read_only_fields = fields


class SourceInputSerializer(serializers.Serializer):
    """Shape only; what makes a source valid (kind, trust range, free slug) is the service's rule."""

    slug = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=40)
    trust = serializers.FloatField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SourceListView(generics.ListAPIView):
    """Any staff reviewer reads the sources and their health; a policy admin registers one."""

    serializer_class = SourceSerializer
    filter_backends = []

    def get_queryset(self):
        # Rates over the classes the reader may see (casework.hygiene.sources_overview).
        return sources_overview(user=self.request.user)

    def get_permissions(self):
        allowed = roles.STAFF if self.request.method == "GET" else (roles.POLICY_ADMIN,)
        return [role_permission(*allowed)()]

    @extend_schema(request=SourceInputSerializer, responses={201: SourceSerializer})
    def post(self, request):
        data = SourceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = source_register(**data.validated_data, actor=request.user)
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)


class SourceConfirmView(APIView):
    """The spike is real: the source is healthy again and its held signals enter the queue."""

    permission_classes = [role_permission(roles.POLICY_ADMIN)]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SourceConfirmed", {"source": SourceSerializer(), "released": serializers.IntegerField()}
        ),
    )
    def post(self, request, slug):
        result = source_confirm(source_slug=slug, actor=request.user)
        return Response({"source": SourceSerializer(result["source"]).data, "released": result["released"]})


class SourceQuarantineView(APIView):
    """The pipeline is broken: its signals stay held (stored, out of the queue)."""

    permission_classes = [role_permission(roles.POLICY_ADMIN)]

    @extend_schema(request=None, responses=SourceSerializer)
    def post(self, request, slug):
        return Response(SourceSerializer(source_quarantine(source_slug=slug, actor=request.user)).data)


# --- campaigns -----------------------------------------------------------------------------------------------------


class LinkSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as the reader may know it: read through ``VisibleCampaigns`` (the size, links and
    cases are over the members the reader may see)."""

    threat_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    size = serializers.IntegerField(source="visible_size", read_only=True)
    links = LinkSerializer(many=True, read_only=True, source="visible_links")
    cases = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "threat_class", "size", "links", "cases", "status", "detected_at", "updated_at"]
        read_only_fields = fields

    def get_cases(self, campaign) -> list[int]:
        return [c.pk for c in campaign.member_cases]


class VisibleCampaigns(RestrictedMixin):
    """Campaigns the user may see, each with the ids of its member cases the user may see and its size and
    links over the members the user may see (``CampaignQuerySet.with_visible_figures``; constant queries)."""

    queryset = Campaign.objects.select_related("threat_class")

    def get_queryset(self):
        user = self.request.user
        members = restrict(Case.objects.only("id", "campaign_id").order_by("id"), user)
        return (
            super()
            .get_queryset()
            .with_visible_figures(user)
            .prefetch_related(Prefetch("cases", queryset=members, to_attr="member_cases"))
        )

    def visible_object(self, **lookup):
        return campaign_links_visible(self.request.user, [super().visible_object(**lookup)])[0]

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else campaign_links_visible(self.request.user, page)


class CampaignListView(VisibleCampaigns, generics.ListAPIView):
    """Campaigns the user may see, largest (by the members the user may see) first; filter by ``status``."""

    permission_classes = [role_permission(*roles.STAFF)]
    serializer_class = CampaignSerializer
    filterset_fields = ["status"]

    def get_queryset(self):
        return super().get_queryset().order_by("-visible_size", "-detected_at", "id")


class CampaignDetailView(VisibleCampaigns, APIView):
    permission_classes = [role_permission(*roles.STAFF)]

    @extend_schema(responses=CampaignSerializer)
    def get(self, request, pk):
        return Response(CampaignSerializer(self.visible_object(pk=pk)).data)
