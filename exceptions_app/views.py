from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from workflows.models import Queue


@login_required
def home(request):
    queues = Queue.objects.all()
    return render(request, "exceptions_app/home.html", {"queues": queues})
